package kubeapi

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ErrNotConfirmed is what a change returns when the user declined it at
// the confirmation: nothing was changed.
var ErrNotConfirmed = errors.New("not confirmed: nothing changed")

// OutputGroupVersion is the group and version of every document the plugin
// prints (LegacyTokenAudit, FleetReport, verify's verdicts, ...).
var OutputGroupVersion = schema.GroupVersion{Group: "bound-token.kubectl.io", Version: "v1alpha1"}

// Where names a namespace as the messages say it: "in namespace NS", or
// "across all namespaces" for "".
func Where(ns string) string {
	if ns == "" {
		return "across all namespaces"
	}
	return "in namespace " + ns
}

// DescribeAPIError turns RBAC and connection errors into one line that says
// what is missing.
func DescribeAPIError(err error, verb, resource, ns string) error {
	where := Where(ns)
	if apierrors.IsForbidden(err) {
		return &forbiddenError{msg: fmt.Sprintf("forbidden: you may not %s %s %s; ask for RBAC that allows %q on %q", verb, resource, where, verb, resource), err: err}
	}
	return fmt.Errorf("%s %s %s: %w", verb, resource, where, err)
}

// forbiddenError says what RBAC is missing in one line, and still is the
// apiserver's Forbidden to apierrors.IsForbidden (a fleet reports the
// cluster as forbidden, not as failed).
type forbiddenError struct {
	msg string
	err error
}

func (e *forbiddenError) Error() string { return e.msg }
func (e *forbiddenError) Unwrap() error { return e.err }
