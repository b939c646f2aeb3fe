// gendocs writes the command reference to docs/reference (make docs).
package main

import (
	"fmt"
	"os"

	"github.com/bound-token/kubectl-bound-token/pkg/cmd"
)

func main() {
	dir := "docs/reference"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := os.Setenv("HOME", cmd.DocsHome); err != nil {
		panic(err)
	}
	if err := cmd.WriteDocs(dir); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
