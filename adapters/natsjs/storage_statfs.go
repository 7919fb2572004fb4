//go:build linux || darwin || freebsd

package natsjs

import "syscall"

// freeSpace returns the bytes free for an unprivileged writer on the file
// system holding dir.
func freeSpace(dir string) (int64, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, err
	}
	return int64(uint64(fs.Bavail) * uint64(fs.Bsize)), nil //nolint:gosec // a file system's size fits
}
