package recorder

import (
	"testing"

	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
