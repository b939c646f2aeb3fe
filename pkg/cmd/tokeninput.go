package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

// tokenInput is where decode and verify read a token from. A token on the
// command line lands in shell history and `ps`; the help recommends "-" or
// --token-file, but the argument form stays for quick looks.
type tokenInput struct {
	Arg        string
	File       string
	FromSecret string
}

func (ti tokenInput) validate() error {
	n := 0
	for _, s := range []string{ti.Arg, ti.File, ti.FromSecret} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return fmt.Errorf("no token given: pass TOKEN, - (stdin), --token-file FILE or --from-secret NAME")
	case n > 1:
		return fmt.Errorf("give the token one way only: TOKEN, -, --token-file or --from-secret")
	}
	return nil
}

// read returns the token text, never longer than jwt.MaxTokenSize. Errors
// never include the token.
func (ti tokenInput) read(ctx context.Context, in io.Reader, client func() (kubernetes.Interface, string, error)) (string, error) {
	switch {
	case ti.Arg == "-":
		return readCapped(in, "stdin")
	case ti.Arg != "":
		return ti.Arg, nil
	case ti.File != "":
		f, err := os.Open(ti.File)
		if err != nil {
			return "", fmt.Errorf("read --token-file: %w", err)
		}
		defer f.Close()
		return readCapped(f, ti.File)
	case ti.FromSecret != "":
		cs, ns, err := client()
		if err != nil {
			return "", err
		}
		return tokenFromSecret(ctx, cs, ns, ti.FromSecret)
	}
	return "", ti.validate()
}

func readCapped(r io.Reader, what string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, jwt.MaxTokenSize+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > jwt.MaxTokenSize {
		return "", fmt.Errorf("%s holds more than 1 MiB: not a token", what)
	}
	return strings.TrimSpace(string(b)), nil
}

func tokenFromSecret(ctx context.Context, cs kubernetes.Interface, ns, name string) (string, error) {
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("secret %q not found in namespace %q", name, ns)
	case apierrors.IsForbidden(err):
		return "", fmt.Errorf("not allowed to get secret %s/%s (RBAC verb \"get\" on \"secrets\")", ns, name)
	case err != nil:
		return "", fmt.Errorf("get secret %s/%s: %w", ns, name, err)
	}
	if s.Type != corev1.SecretTypeServiceAccountToken {
		return "", fmt.Errorf("secret %s/%s has type %q, not %q", ns, name, s.Type, corev1.SecretTypeServiceAccountToken)
	}
	tok := strings.TrimSpace(string(s.Data[corev1.ServiceAccountTokenKey]))
	if tok == "" {
		return "", fmt.Errorf("secret %s/%s has no token yet: kube-controller-manager fills it; check that its token controller runs", ns, name)
	}
	return tok, nil
}
