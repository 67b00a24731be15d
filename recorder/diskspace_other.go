//go:build !linux

package recorder

import "errors"

// diskSpace is not measured on this system: the spool watches only
// SpoolMaxBytes.
func diskSpace(dir string) (free, total uint64, err error) {
	return 0, 0, errors.New("free disk space is not measured on this system")
}
