package kubeconfig

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestForTokenEmbedsCAAndToken(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("CA-PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: "https://10.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{CAFile: ca}}
	kc, err := ForToken(cfg, "prod", Identity{Namespace: "ci", ServiceAccount: "deployer"}, "TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(kc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*back, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != cfg.Host || string(rc.CAData) != "CA-PEM" || rc.BearerToken != "TOKEN" {
		t.Fatalf("round trip: host=%s ca=%q token set=%v", rc.Host, rc.CAData, rc.BearerToken == "TOKEN")
	}
	ns, _, _ := clientcmd.NewDefaultClientConfig(*back, nil).Namespace()
	if ns != "ci" {
		t.Errorf("namespace = %q, want ci", ns)
	}
}

func TestForTokenNeedsServer(t *testing.T) {
	if _, err := ForToken(&rest.Config{}, "", Identity{}, "x"); err == nil {
		t.Fatal("want an error for a config without server")
	}
}
