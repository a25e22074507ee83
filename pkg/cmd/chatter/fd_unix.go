//go:build unix

package main

import "golang.org/x/sys/unix"

// ownFD returns a descriptor of its own for the terminal behind fd, and
// how to release it.
func ownFD(fd int) (int, func(), error) {
	n, err := unix.Dup(fd)
	if err != nil {
		return 0, nil, err
	}
	return n, func() { _ = unix.Close(n) }, nil
}
