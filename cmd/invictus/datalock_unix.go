//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dataLock is the lock of a data directory's store (DATA/node.lock).
type dataLock struct{ f *os.File }

// lockDataDir takes the lock of the data directory without waiting. It
// returns an error wrapping errDataInUse when another process (or another
// open of the lock in this process) holds it.
func lockDataDir(data string) (*dataLock, error) {
	if err := os.MkdirAll(data, 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(data, nodeLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errDataInUse
		}
		return nil, fmt.Errorf("lock %s: %w", nodeLockName, err)
	}
	return &dataLock{f: f}, nil
}

// unlock releases the lock; closing the file does.
func (l *dataLock) unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
	}
}
