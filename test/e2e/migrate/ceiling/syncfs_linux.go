package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncfs makes everything written under dir durable with one syncfs(2), as
// pkg/backup does for a batch.
func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
