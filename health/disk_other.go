//go:build !unix

package health

import "errors"

func diskSpace(string) (free, total int64, err error) {
	return 0, 0, errors.New("free space is not measured on this system")
}
