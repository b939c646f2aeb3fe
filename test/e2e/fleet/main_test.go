// Package fleet tests --contexts/--all-contexts against three real local
// control planes (kube-apiserver, etcd, kube-controller-manager each), a
// context at a closed port, one whose credentials are refused, an alias
// reached through a proxy, and one behind a proxy that never answers.
package fleet

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// names of the three clusters, and of their contexts.
var names = []string{"one", "two", "three"}

var clusters = map[string]*framework.Cluster{}

func TestMain(m *testing.M) {
	stop := func() {
		for _, c := range clusters {
			_ = c.Stop()
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		stop()
		os.Exit(1)
	}()
	// One after another: the start script picks free ports, and two
	// starts at once could pick the same one.
	for _, n := range names {
		// The token controller fills the benchmark's 10,000 Secrets; its
		// default client rate (20/s) would take minutes.
		opts := framework.Options{Name: fmt.Sprintf("fleet-%d-%s", os.Getpid(), n),
			KCMArgs: []string{"--kube-api-qps=500", "--kube-api-burst=1000"}}
		if n == "one" {
			// The benchmark's one apiserver stands for 50 clusters, each
			// with its own 400 read seats (kube-apiserver's default
			// --max-requests-inflight, which priority and fairness
			// shares out): 50 x 400. With 400 for all, a fleet run
			// queues behind a limit no real fleet shares.
			opts.APIServerArgs = []string{"--max-requests-inflight=20000"}
		}
		c, err := framework.Start(opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: cannot start control plane %s: %v\n", n, err)
			stop()
			os.Exit(1)
		}
		clusters[n] = c
	}
	code := func() int {
		defer func() {
			if r := recover(); r != nil {
				stop()
				panic(r)
			}
		}()
		return m.Run()
	}()
	stop()
	os.Exit(code)
}

// run executes `kubectl bound-token ARGS` in-process.
func run(t *testing.T, kubeconfig string, args ...string) framework.Result {
	t.Helper()
	return framework.Run(&bytes.Buffer{}, kubeconfig, args...)
}

// entry is one context of a test kubeconfig.
type entry struct {
	server    string
	caData    []byte
	user      *clientcmdapi.AuthInfo
	namespace string
}

// writeKubeconfig writes a kubeconfig holding ctxs (context name -> entry),
// 0600, into a test folder.
func writeKubeconfig(t testing.TB, ctxs map[string]entry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := writeKubeconfigTo(path, ctxs); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeKubeconfigTo(path string, ctxs map[string]entry) error {
	cfg := clientcmdapi.NewConfig()
	for name, e := range ctxs {
		cfg.Clusters[name] = &clientcmdapi.Cluster{Server: e.server, CertificateAuthorityData: e.caData}
		cfg.AuthInfos[name] = e.user
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: e.namespace}
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// direct is the entry of a cluster's own admin context, in namespace ns.
func direct(t *testing.T, c *framework.Cluster, ns string) entry {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kctx := kc.Contexts[kc.CurrentContext]
	return entry{server: c.Server, caData: kc.Clusters[kctx.Cluster].CertificateAuthorityData, user: kc.AuthInfos[kctx.AuthInfo], namespace: ns}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "https://" + addr
}

// ensureNamespace creates ns in c unless it exists.
func ensureNamespace(t *testing.T, c *framework.Cluster, ns string) {
	t.Helper()
	_, err := c.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}
