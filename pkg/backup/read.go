package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Inspect checks a backup folder completely before a restore changes
// anything: its permissions and every folder's inside, no symlink
// anywhere, and an index that replays. Each file is checked against its
// sha256 and identity when read (Read).
func Inspect(dir string) (*Folder, error) {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("backup folder %s does not exist", dir)
		}
		return nil, fmt.Errorf("backup folder %s cannot be read: %v", dir, errors.Unwrap(err))
	}
	if err := checkFolder(dir); err != nil {
		return nil, err
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("backup folder %s cannot be read: %v", dir, errors.Unwrap(err))
		}
		if d.Type()&fs.ModeSymlink != 0 {
			rel, _ := filepath.Rel(dir, p)
			return fmt.Errorf("backup folder %s holds a symlink (%s): a backup holds only regular files; refusing it", dir, rel)
		}
		if d.IsDir() && p != dir {
			if err := checkFolder(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, IndexFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s holds no %s: not a backup folder of migrate or switch", dir, IndexFile)
		}
		return nil, fmt.Errorf("read %s: %v", filepath.Join(dir, IndexFile), errors.Unwrap(err))
	}
	defer f.Close()
	// Read line by line: a journal of 100,000 Secrets is about 50 MB.
	ix, err := ReadIndex(f)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %v", dir, err)
	}
	return &Folder{Dir: dir, Index: ix}, nil
}

func checkSum(dir string, r *Record) error {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(r.File)))
	if err != nil {
		return err
	}
	if sha256Hex(data) != r.SHA256 {
		return fmt.Errorf("%s does not hold what was written", r.File)
	}
	return nil
}

// Verify checks the file of a backup record of this folder: a regular
// file (no symlink) inside it whose sha256 matches and that holds that
// object.
func (b *Folder) Verify(r *Record) error {
	_, err := readBackup(b.Dir, r)
	return err
}

// readBackup returns the checked manifest of a backup record.
func readBackup(dir string, r *Record) ([]byte, error) {
	rel := filepath.FromSlash(r.File)
	full := filepath.Join(dir, rel)
	// Every component is checked, so a symlinked folder cannot point the
	// read elsewhere.
	shown := ""
	for _, part := range strings.Split(r.File, "/") {
		shown = path.Join(shown, part)
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(shown)))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s is missing", r.File)
			}
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symlink; a backup holds only regular files", shown)
		}
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", r.File)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return nil, err
	}
	if sha256Hex(data) != r.SHA256 {
		return nil, fmt.Errorf("%s does not match the sha256 recorded in %s: the backup was changed after it was written", r.File, IndexFile)
	}
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%s is not a manifest: %v", r.File, text.OneLine(err.Error(), 0))
	}
	gv, _ := schema.ParseGroupVersion(head.APIVersion)
	if head.Kind != r.Kind || RecordGroup(gv.Group) != r.Group || head.Metadata.Namespace != r.Namespace || head.Metadata.Name != r.Name {
		return nil, fmt.Errorf("%s holds %s %s/%s, not %s %s/%s", r.File, TypeKey(head.Kind, gv.Group), head.Metadata.Namespace, head.Metadata.Name, r.Type(), r.Namespace, r.Name)
	}
	return data, nil
}

// checkFolder refuses a backup folder that others could have changed.
func checkFolder(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("backup folder %s: %v", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("backup folder %s is a symlink; give the real folder", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("backup folder %s is not a folder", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("backup folder %s is writable by group or others (mode %04o): anyone could have changed it; fix with chmod 700 %s after checking its content", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// Read returns the checked manifest of a backup record of this folder.
func (b *Folder) Read(r *Record) ([]byte, error) { return readBackup(b.Dir, r) }

// StrictJSON refuses unknown fields and trailing data: a backup holds
// exactly what manifest wrote.
func StrictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the object")
	}
	return nil
}
