// Package atomicfile writes files that readers see whole or not at all: the data goes to a
// temporary file beside the path, which is then renamed into place. It uses only the standard
// library, so that the smallest programs (atlas-shim) may use it.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path with the permissions perm. With sync, the data is on the disk
// before the rename, so that a crash of the machine cannot leave an empty file in its place;
// without, a crash of the program still cannot.
func Write(path string, data []byte, perm os.FileMode, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
