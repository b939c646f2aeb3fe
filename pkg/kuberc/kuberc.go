// Package kuberc is what kubectl bound-token honours of the user's kubectl
// preferences (kuberc, kubectl 1.35+): the credential plugin policy. A user
// who forbids exec credential plugins in kubectl must not have them run by
// this plugin behind their back, so the same file, found the same way,
// governs our clients too. Aliases and flag defaults are kubectl's own
// commands' and are not applied here: our commands share some of their names
// (create) but not their flags.
//
// It must not import pkg/cmd or any domain package: it is read by both.
//
// It must not import any other package of this module.
package kuberc

import (
	"fmt"
	"io"

	"k8s.io/client-go/plugin/pkg/client/auth/exec"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	upstream "k8s.io/kubectl/pkg/kuberc"
)

// Policy reads the credential plugin policy from the kuberc file kubectl
// would read: path when not "" (kubectl's --kuberc), else $KUBERC, else
// ~/.kube/kuberc; none with KUBERC=off or KUBECTL_KUBERC=false. This follows
// k8s.io/kubectl/pkg/kuberc (DefaultGetPreferences, LoadKuberc: a missing
// default file is no preference, a missing explicit one an error) and
// (*Preferences).convertPluginPolicy and validate, which turn the file's
// credentialPluginPolicy and credentialPluginAllowlist into client-go's
// clientcmdapi.PluginPolicy and check it with exec.ValidatePluginPolicy.
// k8s.io/kubectl/pkg/cmd/cmd.go skips kuberc when cmdutil.KubeRC is
// disabled; so does this. Warnings kubectl prints (a file it cannot fully
// decode) go to errOut. The zero policy allows every plugin, as kubectl
// without a kuberc does.
func Policy(path string, errOut io.Writer) (clientcmdapi.PluginPolicy, error) {
	if cmdutil.KubeRC.IsDisabled() {
		return clientcmdapi.PluginPolicy{}, nil
	}
	pref, err := upstream.DefaultGetPreferences(path, errOut)
	if err != nil {
		return clientcmdapi.PluginPolicy{}, err
	}
	if pref == nil {
		return clientcmdapi.PluginPolicy{}, nil
	}
	p := clientcmdapi.PluginPolicy{PolicyType: clientcmdapi.PolicyType(pref.CredentialPluginPolicy)}
	if pref.CredentialPluginAllowlist != nil {
		p.Allowlist = make([]clientcmdapi.AllowlistEntry, len(pref.CredentialPluginAllowlist))
		for i, e := range pref.CredentialPluginAllowlist {
			p.Allowlist[i] = clientcmdapi.AllowlistEntry(e)
		}
	}
	if err := exec.ValidatePluginPolicy(p); err != nil {
		return clientcmdapi.PluginPolicy{}, fmt.Errorf("kuberc: %w", err)
	}
	return p, nil
}

// Apply puts the policy on a config whose credentials come from an exec
// plugin, as kubectl's applyPluginPolicy does through ConfigFlags'
// WrapConfigFn; client-go's exec authenticator then refuses a plugin the
// policy does not allow before running it
// (plugin/pkg/client/auth/exec/exec.go,
// updateCommandAndCheckAllowlistLocked). It returns c for use as a
// WrapConfigFn.
func Apply(c *rest.Config, p clientcmdapi.PluginPolicy) *rest.Config {
	if c != nil && c.ExecProvider != nil {
		c.ExecProvider.PluginPolicy = p
	}
	return c
}
