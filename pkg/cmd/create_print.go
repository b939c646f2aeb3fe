package cmd

import (
	"fmt"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeconfig"
)

// reportExpiry tells on stderr when the token really expires, and says so
// when the server did not grant the lifetime that was asked for.
func (o *CreateOptions) reportExpiry(tr *authenticationv1.TokenRequest) {
	exp := tr.Status.ExpirationTimestamp.Time
	now := o.Now()
	line := fmt.Sprintf("serviceaccount %s/%s: token expires %s (%s)", tr.Namespace, tr.Name, exp.UTC().Format(time.RFC3339), jwt.RelativeTime(exp, now))
	if o.Duration > 0 {
		got := exp.Sub(now).Round(time.Minute)
		if d := got - o.Duration; d > 2*time.Minute || d < -2*time.Minute {
			line += fmt.Sprintf("; asked for %s, the server granted about %s", o.Duration, got)
		}
	}
	fmt.Fprintln(o.ErrOut, line)
}

// emit prints the tokens made: through -o's printer, or as files, a
// kubeconfig or bare tokens.
func (o *CreateOptions) emit(ok []*authenticationv1.TokenRequest) error {
	if o.printer != nil {
		return o.printTokenRequests(ok)
	}
	for _, tr := range ok {
		tok := tr.Status.Token
		switch {
		case o.OutputDir != "":
			if err := o.writeFile(filepath.Join(o.OutputDir, tr.Namespace, tr.Name+".token"), []byte(tok)); err != nil {
				return err
			}
		case o.OutputFile != "":
			if err := o.writeFile(o.OutputFile, []byte(tok)); err != nil {
				return err
			}
		case o.KubeconfigOut != "":
			// Only the kubeconfig: the token is inside it.
		case o.many():
			fmt.Fprintf(o.Out, "%s/%s %s\n", tr.Namespace, tr.Name, tok)
		default:
			if isTerminal(o.Out) {
				fmt.Fprintln(o.Out, tok)
			} else {
				fmt.Fprint(o.Out, tok)
			}
		}
		if o.KubeconfigOut != "" {
			if err := o.writeKubeconfig(tr); err != nil {
				return err
			}
		}
	}
	return nil
}

// printTokenRequests prints the TokenRequests with -o: one alone, several
// as a v1 List.
func (o *CreateOptions) printTokenRequests(ok []*authenticationv1.TokenRequest) error {
	if !o.many() {
		if len(ok) == 0 {
			return nil
		}
		return o.printer.PrintObj(ok[0], o.Out)
	}
	list := &corev1.List{}
	list.APIVersion, list.Kind = "v1", "List"
	for _, tr := range ok {
		list.Items = append(list.Items, runtime.RawExtension{Object: tr})
	}
	return o.printer.PrintObj(list, o.Out)
}

// writeKubeconfig writes --kubeconfig-out for tr's token.
func (o *CreateOptions) writeKubeconfig(tr *authenticationv1.TokenRequest) error {
	kc, err := kubeconfig.ForToken(o.RESTConfig, o.ClusterName, kubeconfig.Identity{Namespace: tr.Namespace, ServiceAccount: tr.Name}, tr.Status.Token)
	if err != nil {
		return failedErrorf("%w", err)
	}
	b, err := kubeconfig.Marshal(kc)
	if err != nil {
		return failedErrorf("%w", err)
	}
	return o.writeFile(o.KubeconfigOut, b)
}

// writeFile writes a secret file (0600, --overwrite) and says so.
func (o *CreateOptions) writeFile(path string, b []byte) error {
	if err := fileutil.WriteSecretFile(path, b, o.Overwrite); err != nil {
		return failedErrorf("%w", withOverwriteAdvice(err))
	}
	fmt.Fprintf(o.ErrOut, "wrote %s\n", path)
	return nil
}
