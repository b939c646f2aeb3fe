package cmd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
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

// The constructors below are the only way commands build an ExitError:
// one per meaning, each formatting like fmt.Errorf. A caller that has an
// error passes it with %w ("%w", err), so that errors.Is and errors.As
// still see it; an err that already carries an exit code keeps it.

// usageErrorf ends the command with ExitUsage: nothing was checked or
// changed.
func usageErrorf(format string, a ...any) error { return exitErrorf(ExitUsage, format, a...) }

// failedErrorf ends the command with ExitFailed: it ran and something
// failed or was refused.
func failedErrorf(format string, a ...any) error { return exitErrorf(ExitFailed, format, a...) }

// silent ends the command with code after it reported the details itself.
func silent(code int) error { return &ExitError{Code: code} }

func exitErrorf(code int, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: code, Err: err}
}

// flagError makes cobra's flag errors usage errors, with kubectl's hint.
func flagError(c *cobra.Command, err error) error {
	return usageErrorf("%v; see '%s --help' for usage", err, c.CommandPath())
}

// clusterUnreachable reports whether err says a request got no answer from
// the cluster: the connection was refused, the name did not resolve, the TLS
// handshake failed, or no answer came in time. Only reads and calls that
// store nothing (TokenRequest, TokenReview) may treat a timeout as "nothing
// changed": a write may have gone through before its answer was lost.
func clusterUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var (
		op       *net.OpError
		dns      *net.DNSError
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		ne       net.Error
	)
	switch {
	case errors.As(err, &op) && op.Op == "dial", errors.As(err, &dns):
		return true
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &record), errors.As(err, &alert):
		return true
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http's untyped error for a tls.RecordHeaderError that looks
		// like HTTP: the server is not the TLS endpoint the kubeconfig names.
		return true
	}
	return errors.As(err, &ne) && ne.Timeout()
}

// unreachable is the one-line message for a cluster that did not answer;
// what says what was therefore left undone ("no token was created"). It is
// the message of an exit-2 error: usageErrorf("%w", unreachable(err, what)).
func unreachable(err error, what string) error {
	where, cause := "", err
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			where = " at " + u.Scheme + "://" + u.Host
		}
		cause = ue.Err
	}
	return fmt.Errorf("cannot reach the cluster%s: %v; %s (check the kubeconfig's server, --context and --server)", where, cause, what)
}

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
