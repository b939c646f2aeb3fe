package cmd

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, documented in the root help and the README.
const (
	ExitOK = 0
	// ExitFailed: the operation ran and its answer is "no": a token was rejected,
	// or at least one item of a batch failed.
	ExitFailed = 1
	// ExitUsage: nothing was checked or changed: bad flags or input, unreadable
	// files, unreachable cluster or keys.
	ExitUsage = 2
)

// ExitError carries the process exit code up to Execute so that commands stay
// testable (no os.Exit inside Run).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

func usageErrorf(format string, a ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, a...)}
}

func usageError(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

// silentFailure ends the command with ExitFailed after the command already
// reported the details itself.
var silentFailure = &ExitError{Code: ExitFailed}

// Execute runs the root command and maps errors to exit codes. Errors print as
// one line, "error: ...", like kubectl.
func Execute(root *cobra.Command, errOut io.Writer) int {
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	code := ExitFailed
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	}
	msg := strings.TrimSpace(err.Error())
	msg = strings.ReplaceAll(msg, "\n", "; ")
	fmt.Fprintf(errOut, "error: %s\n", msg)
	return code
}
