package relay

import (
	"errors"
	"fmt"

	"github.com/pion/stun/v4"
)

// ICEServer is a STUN or TURN server used by the relay and offered to
// browsers.
type ICEServer struct {
	URLs       []string
	Username   string
	Credential string
}

// Validate is the one rule for an ICE server, used by New and by the
// configuration: at least one URL, each a valid stun:, stuns:, turn: or turns:
// URI (RFC 7064, RFC 7065), and a TURN server has a username and a credential.
func (s ICEServer) Validate() error {
	if len(s.URLs) == 0 {
		return errors.New("has no URL")
	}
	for _, u := range s.URLs {
		parsed, err := stun.ParseURI(u)
		if err != nil {
			return fmt.Errorf("ICE server URL %q: %w", u, err)
		}
		if (parsed.Scheme == stun.SchemeTypeTURN || parsed.Scheme == stun.SchemeTypeTURNS) &&
			(s.Username == "" || s.Credential == "") {
			return fmt.Errorf("TURN server %q needs a username and a credential", u)
		}
	}
	return nil
}
