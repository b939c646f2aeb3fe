// Package fileutil writes files that hold secrets: 0600 files, 0700 folders,
// written atomically so a reader never sees half a token and a crash never
// leaves a truncated one behind.
//
// It must not import any other package of this module.
package fileutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	SecretFileMode fs.FileMode = 0o600
	SecretDirMode  fs.FileMode = 0o700
)

// ErrExists is returned when the target exists and overwrite was not asked for.
var ErrExists = errors.New("file exists")

// WriteSecretFile writes data to path with mode 0600. Missing parent folders
// are created 0700. Without overwrite an existing file is left untouched and
// ErrExists is returned; the check and the write are one atomic step (link),
// so two writers cannot both win.
func WriteSecretFile(path string, data []byte, overwrite bool) error {
	return WriteFile(path, data, SecretFileMode, SecretDirMode, overwrite)
}

// WriteFile is WriteSecretFile with other modes, for public documents.
func WriteFile(path string, data []byte, mode, dirMode fs.FileMode, overwrite bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create folder %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after a successful rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if overwrite {
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else {
		if err := os.Link(tmpName, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s: %w", path, ErrExists)
			}
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable; failure only weakens crash safety, so it
// is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
