//go:build !unix

package main

// dataLock is the lock of a data directory's store. Without flock it
// locks nothing: the CLI then relies on DATA/node.json alone to find a
// running node.
type dataLock struct{}

// lockDataDir always succeeds where file locks are not implemented.
func lockDataDir(string) (*dataLock, error) { return &dataLock{}, nil }

// unlock does nothing.
func (l *dataLock) unlock() {}
