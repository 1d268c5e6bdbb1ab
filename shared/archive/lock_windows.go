//go:build windows

package archive

import (
	"os"

	"golang.org/x/sys/windows"
)

// allBytes locks the whole file, whatever its length (as LockFileEx counts in two 32-bit halves).
const allBytes = ^uint32(0)

// lockFile blocks until it holds an exclusive lock (LockFileEx) on f. The lock belongs to f's
// handle, so it also excludes other Local stores of the same process.
func lockFile(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, allBytes, allBytes, new(windows.Overlapped))
}

func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, allBytes, allBytes, new(windows.Overlapped))
}
