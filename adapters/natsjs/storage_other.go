//go:build !(linux || darwin || freebsd)

package natsjs

import "errors"

// freeSpace is not measured on this system: the free space check is
// skipped and the store's own limits remain.
func freeSpace(string) (int64, error) {
	return 0, errors.ErrUnsupported
}
