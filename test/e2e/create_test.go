package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

func TestCreateSingleBareToken(t *testing.T) {
	ns := cluster.CreateNamespace(t, "create-single")
	cluster.CreateServiceAccount(t, ns, "builder")

	r := run(t, "", "create", "builder", "-n", ns, "--audience", "vault", "--duration", "2h").MustCode(t, 0)
	if strings.HasSuffix(r.Stdout, "\n") || strings.Count(r.Stdout, ".") != 2 {
		t.Fatalf("stdout is not a bare token without newline (stdout is not a terminal): %q", r.Stdout)
	}
	tok, err := jwt.Decode(r.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	c := tok.Claims
	if c.Subject != "system:serviceaccount:"+ns+":builder" || len(c.Audience) != 1 || c.Audience[0] != "vault" {
		t.Fatalf("claims: sub=%q aud=%v", c.Subject, c.Audience)
	}
	if got := c.Expiry.Sub(*c.IssuedAt); got != 2*time.Hour {
		t.Errorf("lifetime = %s, want 2h", got)
	}
	// The real expiry from the server is reported on stderr.
	r.StderrHas(t, "serviceaccount "+ns+"/builder: token expires "+c.Expiry.UTC().Format(time.RFC3339))
}

func TestCreateOutputFormats(t *testing.T) {
	ns := cluster.CreateNamespace(t, "create-output")
	cluster.CreateServiceAccount(t, ns, "api")

	r := run(t, "", "create", "api", "-n", ns, "-o", "json").MustCode(t, 0)
	var tr authenticationv1.TokenRequest
	if err := json.Unmarshal([]byte(r.Stdout), &tr); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.Stdout)
	}
	if tr.Kind != "TokenRequest" || tr.Status.Token == "" || tr.Status.ExpirationTimestamp.IsZero() {
		t.Fatalf("-o json gave %+v", tr.TypeMeta)
	}
	r = run(t, "", "create", "api", "-n", ns, "-o", "jsonpath={.status.expirationTimestamp}").MustCode(t, 0)
	if _, err := time.Parse(time.RFC3339, r.Stdout); err != nil {
		t.Fatalf("jsonpath output %q: %v", r.Stdout, err)
	}
	r = run(t, "", "create", "api", "-n", ns, "-o", "yaml").MustCode(t, 0)
	r.StdoutHas(t, "kind: TokenRequest", "token: ey")

	dir := t.TempDir()
	file := filepath.Join(dir, "out", "api.token")
	run(t, "", "create", "api", "-n", ns, "--output-file", file).MustCode(t, 0)
	assertSecretFile(t, file)
	// An existing file is never replaced silently.
	before, _ := os.ReadFile(file)
	r = run(t, "", "create", "api", "-n", ns, "--output-file", file).MustCode(t, 1)
	r.StderrHas(t, "--overwrite")
	after, _ := os.ReadFile(file)
	if string(before) != string(after) {
		t.Fatal("an existing --output-file was changed without --overwrite")
	}
	run(t, "", "create", "api", "-n", ns, "--output-file", file, "--overwrite").MustCode(t, 0)
}

func TestCreateRejectsBadInputBeforeTheServer(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "x", "--duration", "9m"}, "10m minimum"},
		{[]string{"create", "x", "--duration", "10m500ms"}, "whole number of seconds"},
		{[]string{"create"}, "name a ServiceAccount"},
		{[]string{"create", "x", "--bound-object-kind", "Deployment", "--bound-object-name", "d"}, "not supported"},
		{[]string{"create", "a", "b", "--output-file", "f"}, "--output-dir"},
		{[]string{"create", "x", "--bogus"}, "unknown flag"},
	} {
		r := run(t, "", tc.args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: code %d stderr %q; want exit 2 and one line with %q", tc.args, r.Code, r.Stderr, tc.want)
		}
	}
}

func TestCreateClearServerErrors(t *testing.T) {
	ns := cluster.CreateNamespace(t, "create-errors")
	cluster.CreateServiceAccount(t, ns, "web")
	cluster.CreateServiceAccount(t, ns, "other")
	pod := createPod(t, ns, "web-0", "web")

	r := run(t, "", "create", "missing", "-n", ns).MustCode(t, 1)
	r.StderrHas(t, `serviceaccount "missing" not found in namespace "`+ns+`"`)

	r = run(t, "", "create", "other", "-n", ns, "--bound-object-kind", "Pod", "--bound-object-name", pod.Name).MustCode(t, 1)
	r.StderrHas(t, `runs as serviceaccount "web", not "other"`)

	r = run(t, "", "create", "web", "-n", ns, "--bound-object-kind", "Secret", "--bound-object-name", "nope").MustCode(t, 1)
	r.StderrHas(t, `secret "nope" not found`)

	// A user who may not create tokens is told which permission is missing.
	r = run(t, "", "create", "web", "-n", ns, "--as", "alice").MustCode(t, 1)
	r.StderrHas(t, `verb "create" on resource "serviceaccounts/token"`)
}

func TestCreateSeveralSelectorAndAllNamespaces(t *testing.T) {
	ns1 := cluster.CreateNamespace(t, "create-many")
	ns2 := cluster.CreateNamespace(t, "create-many")
	for _, n := range []string{"a", "b", "c"} {
		sa := cluster.CreateServiceAccount(t, ns1, n)
		if n != "c" {
			labelSA(t, sa, "team", "payments-"+ns1)
		}
	}
	labelSA(t, cluster.CreateServiceAccount(t, ns2, "d"), "team", "payments-"+ns1)

	// Several names: one "NAMESPACE/NAME TOKEN" line each, in order.
	r := run(t, "", "create", "a", "b", "c", "-n", ns1).MustCode(t, 0)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], ns1+"/a ey") || !strings.HasPrefix(lines[2], ns1+"/c ey") {
		t.Fatalf("several names gave:\n%s", r.Stdout)
	}

	// Selector in one namespace, as a List.
	r = run(t, "", "create", "-l", "team=payments-"+ns1, "-n", ns1, "-o", "json").MustCode(t, 0)
	names := listNames(t, r.Stdout)
	if strings.Join(names, ",") != ns1+"/a,"+ns1+"/b" {
		t.Fatalf("-l in %s gave %v", ns1, names)
	}

	// Selector across namespaces.
	r = run(t, "", "create", "-l", "team=payments-"+ns1, "-A", "-o", "json").MustCode(t, 0)
	names = listNames(t, r.Stdout)
	if !slices.Contains(names, ns2+"/d") || !slices.Contains(names, ns1+"/a") || len(names) != 3 {
		t.Fatalf("-l -A gave %v", names)
	}

	// Files per ServiceAccount.
	dir := t.TempDir()
	run(t, "", "create", "-l", "team=payments-"+ns1, "-A", "--output-dir", dir).MustCode(t, 0)
	assertSecretFile(t, filepath.Join(dir, ns2, "d.token"))
	st, _ := os.Stat(filepath.Join(dir, ns2))
	if st.Mode().Perm() != 0o700 {
		t.Errorf("--output-dir folder mode %v, want 0700", st.Mode().Perm())
	}

	// Partial failure: the good ones are printed, the bad one reported, exit 1.
	r = run(t, "", "create", "a", "ghost", "b", "-n", ns1).MustCode(t, 1)
	if n := strings.Count(r.Stdout, "\n"); n != 2 {
		t.Fatalf("want 2 tokens on stdout, got:\n%s", r.Stdout)
	}
	r.StderrHas(t, `serviceaccount "ghost" not found`, "1 of 3 tokens could not be created")
}

func TestCreateBoundPodTokenAndTokenReview(t *testing.T) {
	ns := cluster.CreateNamespace(t, "bound-pod")
	cluster.CreateServiceAccount(t, ns, "web")
	pod := createPod(t, ns, "web-0", "web")

	r := run(t, "", "create", "web", "-n", ns, "--bound-object-kind", "Pod", "--bound-object-name", pod.Name).MustCode(t, 0)
	token := r.Stdout
	tok, err := jwt.Decode(token)
	if err != nil {
		t.Fatal(err)
	}
	k := tok.Claims.Kubernetes
	if k == nil || k.Pod == nil || k.Pod.Name != pod.Name || k.Pod.UID != string(pod.UID) {
		t.Fatalf("kubernetes.io block does not bind the pod: %+v", k)
	}

	run(t, "", "decode", "-", "-n", ns).MustCode(t, 2) // no stdin token: usage error
	d := run(t, token, "decode", "-").MustCode(t, 0)
	d.StdoutHas(t, "NOT VERIFIED", "Bound to Pod:", string(pod.UID), "bound token")

	run(t, token, "verify", "-", "--token-review").MustCode(t, 0).StdoutHas(t, "authenticated as system:serviceaccount:"+ns+":web")

	if err := cluster.Client.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	// Offline checks cannot see the deletion...
	run(t, token, "verify", "-").MustCode(t, 0)
	// ...the cluster can, once its ~10 s authentication cache has expired.
	var last framework.Result
	cluster.Eventually(t, 20*time.Second, func() (bool, error) {
		last = run(t, token, "verify", "-", "--token-review")
		return last.Code == 1, nil
	})
	last.StdoutHas(t, "REJECTED", "TokenReview")
}

func TestCreateKubeconfigOutAuthenticates(t *testing.T) {
	ns := cluster.CreateNamespace(t, "kubeconfig-out")
	cluster.CreateServiceAccount(t, ns, "deployer")
	path := filepath.Join(t.TempDir(), "ci", "deployer.kubeconfig")

	r := run(t, "", "create", "deployer", "-n", ns, "--kubeconfig-out", path).MustCode(t, 0)
	if r.Stdout != "" {
		t.Errorf("--kubeconfig-out also printed the token on stdout")
	}
	assertSecretFile(t, path)
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ssr, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ssr.Status.UserInfo.Username, "system:serviceaccount:"+ns+":deployer"; got != want {
		t.Fatalf("kubeconfig authenticates as %q, want %q", got, want)
	}
}

func assertSecretFile(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, st.Mode().Perm())
	}
	if st.Size() == 0 {
		t.Errorf("%s is empty", path)
	}
}

func createPod(t *testing.T, ns, name, sa string) *corev1.Pod {
	t.Helper()
	pod, err := cluster.Client.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "c", Image: "registry.invalid/none"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

func labelSA(t *testing.T, sa *corev1.ServiceAccount, k, v string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, k, v)
	if _, err := cluster.Client.CoreV1().ServiceAccounts(sa.Namespace).Patch(context.Background(), sa.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func listNames(t *testing.T, out string) []string {
	t.Helper()
	var list struct {
		Kind  string
		Items []authenticationv1.TokenRequest
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || list.Kind != "List" {
		t.Fatalf("not a List (%v):\n%s", err, out)
	}
	var names []string
	for _, it := range list.Items {
		if it.Status.Token == "" {
			t.Errorf("%s/%s has no token", it.Namespace, it.Name)
		}
		names = append(names, it.Namespace+"/"+it.Name)
	}
	return names
}

// A token bound to a Node carries the node's name and uid, and the server
// accepts it.
func TestCreateBoundNodeToken(t *testing.T) {
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "bound-node")
	cluster.CreateServiceAccount(t, ns, "agent")
	node, err := cluster.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "node-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
	})

	token := run(t, "", "create", "agent", "-n", ns, "--bound-object-kind", "Node", "--bound-object-name", node.Name).MustCode(t, 0).Stdout
	tok, err := jwt.Decode(token)
	if err != nil {
		t.Fatal(err)
	}
	if k := tok.Claims.Kubernetes; k == nil || k.Node == nil || k.Node.Name != node.Name || k.Node.UID != string(node.UID) {
		t.Fatalf("kubernetes.io block does not bind the node: %+v", tok.Claims.Kubernetes)
	}
	run(t, token, "decode", "-").MustCode(t, 0).StdoutHas(t, "Bound to Node:", node.Name, string(node.UID))
	run(t, token, "verify", "-", "--token-review").MustCode(t, 0).StdoutHas(t, "authenticated as system:serviceaccount:"+ns+":agent")
}

// A kube-apiserver with ServiceAccountTokenNodeBinding off (a release
// before 1.31, or OpenShift before 4.19) refuses a Node binding; create
// names the gate. The gate is GA and locked on from 1.33
// (pkg/features/kube_features.go), so the cluster emulates 1.32 to turn it
// off, which only 1.34 can: a release emulates at most three minors back
// (1.37 refuses --emulated-version=1.32: "emulation version 1.32 is not
// between [1.34, 1.37.0]"). `make test` runs this package on 1.34 too.
func TestCreateBoundNodeTokenRefusedWithoutTheGate(t *testing.T) {
	if cluster.AtLeast(36) {
		t.Skipf("%s cannot emulate 1.32, the last release with ServiceAccountTokenNodeBinding off; this case runs on KUBE_VERSION=1.34 (make e2e-oldest)", cluster.Version)
	}
	ctx := context.Background()
	off, err := framework.Start(framework.Options{Name: fmt.Sprintf("create-nodegate-%d", os.Getpid()),
		APIServerArgs: []string{"--emulated-version=1.32", "--feature-gates=ServiceAccountTokenNodeBinding=false"}})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Stop()
	node2, err := off.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "--kubeconfig", off.Kubeconfig, "create", "default", "-n", "default", "--bound-object-kind", "Node", "--bound-object-name", node2.Name).MustCode(t, 1)
	r.StderrHas(t, "feature gate ServiceAccountTokenNodeBinding disabled", "bind to a Pod or Secret")
	if r.Stdout != "" {
		t.Fatalf("a refused create printed %q", r.Stdout)
	}
}
