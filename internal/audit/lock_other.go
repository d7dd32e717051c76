//go:build !unix

package audit

import "os"

// lockFile does nothing where flock(2) does not exist: run one writer per
// file.
func lockFile(*os.File) error { return nil }
