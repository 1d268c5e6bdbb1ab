//go:build !(unix && !aix) && !windows

package archive

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// lockFile refuses: without a file lock, overlapping runs sharing a local archive could both
// win a lease, so a local archive is not offered here (a gs:// archive still works).
func lockFile(*os.File) error {
	return fmt.Errorf("local archive on %s: no file locking: %w", runtime.GOOS, errors.ErrUnsupported)
}

func unlockFile(*os.File) error { return nil }
