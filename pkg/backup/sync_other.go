//go:build !linux

package backup

// syncAll makes the files and folders of a batch durable, one fsync each.
func syncAll(_ string, files, dirs []string) error {
	for _, p := range append(files, dirs...) {
		if err := syncPath(p); err != nil {
			return err
		}
	}
	return nil
}
