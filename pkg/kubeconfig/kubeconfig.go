// Package kubeconfig writes self-contained kubeconfigs that authenticate with
// a ServiceAccount token: the usual hand-off to CI jobs and external tools.
//
// It must not import any other package of this module.
package kubeconfig

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Identity names whom the token belongs to; it becomes the user and context name.
type Identity struct {
	Namespace      string
	ServiceAccount string
}

// ForToken returns a kubeconfig for the cluster that cfg reaches, with the CA
// embedded (the file must work on another machine) and the token as the
// only credential.
func ForToken(cfg *rest.Config, clusterName string, id Identity, token string) (*clientcmdapi.Config, error) {
	if cfg == nil || cfg.Host == "" {
		return nil, fmt.Errorf("the current kubeconfig names no server")
	}
	if clusterName == "" {
		clusterName = "cluster"
	}
	caData := cfg.CAData
	if len(caData) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the cluster CA %s: %w", cfg.CAFile, err)
		}
		caData = b
	}
	user := id.ServiceAccount + "@" + id.Namespace
	ctxName := user + "@" + clusterName
	out := clientcmdapi.NewConfig()
	out.Clusters[clusterName] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: caData,
		InsecureSkipTLSVerify:    cfg.Insecure,
		TLSServerName:            cfg.TLSClientConfig.ServerName,
	}
	out.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	out.Contexts[ctxName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user, Namespace: id.Namespace}
	out.CurrentContext = ctxName
	return out, nil
}

// Marshal renders the kubeconfig as YAML.
func Marshal(c *clientcmdapi.Config) ([]byte, error) {
	return clientcmd.Write(*c)
}
