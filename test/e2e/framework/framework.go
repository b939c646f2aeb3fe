// Package framework starts a real local control plane through
// hack/local-cluster.sh for e2e tests: one per test package, stopped when
// the package's tests end.
package framework

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const modulePath = "github.com/bound-token/kubectl-bound-token"

// Options are passed to `hack/local-cluster.sh up`. The zero value starts
// the cluster every package had before the options below existed.
type Options struct {
	Name          string // default: e2e-<pid>, so parallel packages never collide
	KeyFile       string
	Issuer        string
	KCMArgs       []string
	APIServerArgs []string
	// JSONStorage makes kube-apiserver store objects in etcd as JSON
	// (--storage-media-type=application/json) instead of its default,
	// protobuf (pkg/controlplane/apiserver/options/options.go,
	// NewOptions), so that Backdate can rewrite a stored field in place.
	JSONStorage bool
	// Audit makes kube-apiserver log every request at level Metadata to
	// Cluster.AuditLog (hack/local-cluster.sh --audit).
	Audit bool
	// SigningEndpoint is the Unix socket of an external service-account
	// token signer (`up --signing-endpoint`; see Signer) that signs and
	// verifies instead of the key files.
	SigningEndpoint string
	// Workloads runs pods (`up --workloads`): the workload controllers,
	// root-ca-cert-publisher, the ServiceAccount admission plugin,
	// kube-scheduler and kwok with fake Nodes (Cluster.Nodes). It costs a
	// few seconds of start-up; packages that need no pods leave it off.
	Workloads bool
	// TrackingSince, when set, is the day Main makes legacy token use
	// tracked since (SetTrackingSinceNow) before the tests run, as on a
	// cluster upgraded to 1.28 long since.
	TrackingSince time.Time
	// Keep leaves the cluster running when Main's tests end (not on a
	// signal or a panic), and says where: for looking at it afterwards.
	Keep bool
}

// Cluster is a running local control plane with an admin client.
type Cluster struct {
	Name, Dir, Kubeconfig, Server, Issuer string
	SigningKeyFile, PublicKeyFile, CAFile string
	// EtcdURL is etcd's plain-HTTP client URL, for tests that act on
	// storage itself (compaction).
	EtcdURL string
	// AuditLog is kube-apiserver's audit log (JSON lines), set only when
	// the cluster was started with Options.Audit.
	AuditLog string
	// Nodes are the fake Nodes kwok runs pods on (Options.Workloads).
	Nodes []string
	// Version is kube-apiserver's gitVersion (v1.37.2, v1.34.4).
	Version    string
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	repo       string
	// plugin is the binary PluginBinary built.
	plugin struct {
		once sync.Once
		path string
		err  error
	}
}

// RepoRoot walks up from the working directory to this module's root.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cannot find the root of module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// Start runs `hack/local-cluster.sh up` and connects to the cluster.
func Start(opts Options) (*Cluster, error) {
	repo, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("e2e-%d", os.Getpid())
	}
	args := []string{"up", "--name", opts.Name}
	if opts.KeyFile != "" {
		args = append(args, "--key", opts.KeyFile)
	}
	if opts.Issuer != "" {
		args = append(args, "--issuer", opts.Issuer)
	}
	if opts.Audit {
		args = append(args, "--audit")
	}
	if opts.Workloads {
		args = append(args, "--workloads")
	}
	if opts.SigningEndpoint != "" {
		args = append(args, "--signing-endpoint", opts.SigningEndpoint)
	}
	for _, a := range opts.KCMArgs {
		args = append(args, "--kcm-arg", a)
	}
	apiArgs := opts.APIServerArgs
	if opts.JSONStorage {
		apiArgs = append([]string{"--storage-media-type=application/json"}, apiArgs...)
	}
	if len(apiArgs) > 0 {
		args = append(append(args, "--"), apiArgs...)
	}
	cmd := exec.Command(filepath.Join(repo, "hack", "local-cluster.sh"), args...)
	cmd.Dir = repo
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("hack/local-cluster.sh %s: %w", strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	c, err := Attach(strings.TrimSpace(lines[len(lines)-1]))
	if err == nil && !strings.HasPrefix(c.Version, "v"+KubeVersion()+".") {
		err = fmt.Errorf("KUBE_VERSION=%s but kube-apiserver says %s", KubeVersion(), c.Version)
	}
	if err != nil {
		stop := &Cluster{Name: opts.Name, repo: repo}
		_ = stop.Stop()
		return nil, err
	}
	return c, nil
}

// KubeVersion is the Kubernetes release the suites run on, as
// hack/build-controlplane.sh and hack/local-cluster.sh read it: the
// environment's KUBE_VERSION, else 1.37, the current release. `make test`
// runs the release-dependent suites again with KUBE_VERSION=1.34, the
// oldest release supported.
func KubeVersion() string {
	if v := os.Getenv("KUBE_VERSION"); v != "" {
		return v
	}
	return "1.37"
}

// AtLeast says the cluster runs release 1.minor or later, for the few
// assertions whose right answer depends on the release (an API that is
// served only from one on).
func (c *Cluster) AtLeast(minor int) bool {
	var major, m int
	if _, err := fmt.Sscanf(c.Version, "v%d.%d", &major, &m); err != nil {
		return false
	}
	return major > 1 || m >= minor
}

// Attach connects to a cluster hack/local-cluster.sh already runs, from
// the kubeconfig `up` printed (its folder holds the env file): for
// programs such as hack/oldcluster and hack/openshift-sim that act on the
// cluster of `make demo`. Stop on the result stops that cluster.
func Attach(kubeconfig string) (*Cluster, error) {
	repo, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(kubeconfig)
	c := &Cluster{Name: filepath.Base(dir), Dir: dir, Kubeconfig: kubeconfig, repo: repo}
	env, err := readEnv(filepath.Join(c.Dir, "env"))
	if err != nil {
		return nil, fmt.Errorf("%w: give the kubeconfig `hack/local-cluster.sh up` printed", err)
	}
	c.Server, c.Issuer = env["SERVER"], env["ISSUER"]
	c.SigningKeyFile, c.PublicKeyFile, c.CAFile = env["SIGNING_KEY"], env["PUBLIC_KEY"], env["CA_FILE"]
	c.EtcdURL, c.AuditLog = env["ETCD"], env["AUDIT_LOG"]
	if n := env["KWOK_NODES"]; n != "" {
		c.Nodes = strings.Split(n, ",")
	}
	if c.RESTConfig, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
		return nil, err
	}
	c.RESTConfig.QPS, c.RESTConfig.Burst = 100, 200
	if c.Client, err = kubernetes.NewForConfig(c.RESTConfig); err != nil {
		return nil, err
	}
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		return nil, err
	}
	c.Version = v.GitVersion
	return c, nil
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster env: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}

// Stop runs `hack/local-cluster.sh down` for this cluster only.
func (c *Cluster) Stop() error {
	cmd := exec.Command(filepath.Join(c.repo, "hack", "local-cluster.sh"), "down", "--name", c.Name)
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// Main is TestMain's body: start the cluster or fail loudly (never skip),
// run the tests, stop the cluster, also on SIGINT/SIGTERM.
func Main(m *testing.M, opts Options, set func(*Cluster)) {
	c, err := Start(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start the local control plane: %v\n", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_ = c.Stop()
		os.Exit(1)
	}()
	if !opts.TrackingSince.IsZero() {
		if err := c.SetTrackingSinceNow(opts.TrackingSince); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			_ = c.Stop()
			os.Exit(1)
		}
	}
	set(c)
	code := func() int {
		defer func() {
			if r := recover(); r != nil {
				_ = c.Stop()
				panic(r)
			}
		}()
		return m.Run()
	}()
	if opts.Keep {
		fmt.Fprintf(os.Stderr, "e2e: control plane %s left running, kubeconfig %s\n", c.Name, c.Kubeconfig)
	} else if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stopping the local control plane: %v\n", err)
	}
	os.Exit(code)
}

// Eventually polls cond every 250 ms until it holds or timeout passes.
func (c *Cluster) Eventually(t testing.TB, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}

// poll is Eventually returning an error, for the helpers programs use too.
func poll(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %s (last error: %v)", timeout, lastErr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// CreateNamespace makes a fresh namespace, deleted when the test ends.
func (c *Cluster) CreateNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ns, err := c.Client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// CreateServiceAccount creates a ServiceAccount and returns it with its uid.
func (c *Cluster) CreateServiceAccount(t testing.TB, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sa
}
