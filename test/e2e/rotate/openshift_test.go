package rotate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
	"github.com/bound-token/kubectl-bound-token/test/sim/kasoperator"
)

func currentIssuer(t *testing.T) string {
	t.Helper()
	a, err := dyn.Resource(openshift.AuthenticationGVR).Get(context.Background(), "cluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return openshift.IssuerOf(a)
}

func kasStatus(t *testing.T) *openshift.KubeAPIServerStatus {
	t.Helper()
	k, err := dyn.Resource(openshift.KubeAPIServerGVR).Get(context.Background(), "cluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := openshift.StatusOf(k)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type rotateJSON struct {
	Previous, Issuer, Backup, TrustWindow string
	Rollout                               struct {
		Revision        int32
		Done            bool
		NodesAtRevision int
		NodeStatuses    []openshift.NodeStatus
	}
	Restart *struct {
		Restarted         []string
		SkippedNamespaces []string
	}
}

func TestRotateHappyPathThreeNodes(t *testing.T) {
	op := openShift(t, nil)
	backup := filepath.Join(t.TempDir(), "auth.yaml")
	r := run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/a", "--yes", "--backup", backup, "-o", "json").
		Must(t, 0, "current issuer: https://kubernetes.default.svc", "new issuer:     https://oidc.example.com/a",
			"previous issuer https://kubernetes.default.svc trusted until", "a second kube-apiserver rollout follows")
	var out rotateJSON
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	if !out.Rollout.Done || out.Rollout.Revision != 8 || out.Rollout.NodesAtRevision != 3 || len(out.Rollout.NodeStatuses) != 3 {
		t.Fatalf("rollout: %+v", out.Rollout)
	}
	for _, n := range out.Rollout.NodeStatuses {
		if n.CurrentRevision != 8 {
			t.Errorf("node %s at %d", n.NodeName, n.CurrentRevision)
		}
	}
	if got := currentIssuer(t); got != "https://oidc.example.com/a" {
		t.Fatalf("spec.serviceAccountIssuer = %q", got)
	}
	// The trust window printed is the operator's expiry for the old issuer.
	st := kasStatus(t)
	if len(st.ServiceAccountIssuers) != 2 || st.ServiceAccountIssuers[1].Name != openshift.DefaultIssuer {
		t.Fatalf("trusted: %+v", st.ServiceAccountIssuers)
	}
	exp, _ := st.ServiceAccountIssuers[1].Expires()
	if !strings.Contains(r.Stderr, exp.UTC().Format("2006-01-02T15:04Z")) {
		t.Errorf("trust window %s not in stderr:\n%s", exp, r.Stderr)
	}
	// The backup is the object from before the change, 0600.
	fi, err := os.Stat(backup)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup: %v %v", fi, err)
	}
	back, err := openshift.ReadBackup(backup)
	if err != nil || openshift.IssuerOf(back) != "" {
		t.Fatalf("backup holds issuer %q (%v)", openshift.IssuerOf(back), err)
	}
	if op.Rollouts() != 1 {
		t.Fatalf("%d rollouts", op.Rollouts())
	}
}

func TestRotateRollbackFromBackup(t *testing.T) {
	op := openShift(t, func(o *kasoperator.Operator) { o.Legacy = true })
	dir := t.TempDir()
	first := filepath.Join(dir, "first.yaml")
	run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/b", "--yes", "--backup", first).Must(t, 0)
	second := filepath.Join(dir, "second.yaml")
	r := run(cluster.Kubeconfig, "rotate", "issuer", "--rollback", "--from", first, "--yes", "--backup", second).
		Must(t, 0, "current issuer: https://oidc.example.com/b", "new issuer:     https://kubernetes.default.svc",
			"previous issuer https://oidc.example.com/b trusted until")
	if got := currentIssuer(t); got != "" {
		t.Fatalf("after rollback spec.serviceAccountIssuer = %q, want unset", got)
	}
	// The rollback itself was backed up, and its backup holds issuer b.
	if back, err := openshift.ReadBackup(second); err != nil || openshift.IssuerOf(back) != "https://oidc.example.com/b" {
		t.Fatalf("rollback backup: %v", err)
	}
	if st := kasStatus(t); st.LatestAvailableRevision != 9 || op.Rollouts() != 2 {
		t.Fatalf("revision %d after %d rollouts", st.LatestAvailableRevision, op.Rollouts())
	}
	_ = r
	// An existing backup file is never overwritten: nothing changes.
	run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/c", "--yes", "--backup", second).Must(t, 2, "already exists")
	if got := currentIssuer(t); got != "" {
		t.Fatalf("issuer changed without a backup: %q", got)
	}
	// Not a backup: refused as unusable input.
	_ = os.WriteFile(filepath.Join(dir, "x.yaml"), []byte("kind: ConfigMap\n"), 0o600)
	run(cluster.Kubeconfig, "rotate", "issuer", "--rollback", "--from", filepath.Join(dir, "x.yaml"), "--yes").Must(t, 2, "is not a backup of authentications.config.openshift.io/cluster")
}

// The race: right after the patch the condition still reads
// AllNodesAtLatestRevision for the old revision. wait --since-revision must
// not stop there.
func TestWaitSinceRevisionIgnoresStaleCondition(t *testing.T) {
	openShift(t, func(o *kasoperator.Operator) { o.RaiseDelay = 2 * time.Second })
	patched := time.Now()
	patch := []byte(`{"spec":{"serviceAccountIssuer":"https://oidc.example.com/race"}}`)
	if _, err := dyn.Resource(openshift.AuthenticationGVR).Patch(context.Background(), "cluster", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The race is really there: the stale status says "done".
	if p := openshift.Evaluate(kasStatus(t), openshift.NoRevision); !p.Done || p.Revision != 7 {
		t.Fatalf("precondition: the stale status should read done at 7: %+v", p)
	}
	r := run(cluster.Kubeconfig, "wait", "--since-revision", "7", "-o", "json").Must(t, 0)
	if time.Since(patched) < 2*time.Second {
		t.Fatalf("wait returned after %s, before the operator raised the revision", time.Since(patched))
	}
	var p openshift.Progress
	if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil || !p.Done || p.Revision != 8 || p.AtRevision != 3 {
		t.Fatalf("%v %+v", err, p)
	}
	// Without --since-revision a finished rollout ends at once.
	run(cluster.Kubeconfig, "wait").Must(t, 0)
}

func TestRotateFailedInstallThenRollback(t *testing.T) {
	op := openShift(t, func(o *kasoperator.Operator) { o.FailNode = "master-1" })
	dir := t.TempDir()
	r := run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/fail", "--yes", "--backup", filepath.Join(dir, "b.yaml"), "--restart", "workloads").
		Must(t, 1, "NodeInstallerDegraded: InstallerPodFailed: 1 nodes are failing on revision 8",
			"node master-1 failed revision 8 (InstallerFailed): installer: failed to copy static pod manifests",
			"kube-apiserver rollout to revision 8 failed", "undo with `kubectl bound-token rotate issuer --rollback --from ")
	if strings.Contains(r.Stderr, " workloads in ") {
		t.Fatalf("workloads restarted after a failed rollout:\n%s", r.Stderr)
	}
	run(cluster.Kubeconfig, "wait", "--since-revision", "7").Must(t, 1, "InstallerPodFailed")
	// A new issuer is refused while the failed rollout is pending ...
	run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/other", "--yes", "--backup", filepath.Join(dir, "c.yaml")).
		Must(t, 1, "a kube-apiserver rollout is in progress")
	// ... but rolling back is not: the operator then rolls out revision 9.
	op.SetFailNode("")
	run(cluster.Kubeconfig, "rotate", "issuer", "--rollback", "--from", filepath.Join(dir, "b.yaml"), "--yes", "--backup", filepath.Join(dir, "d.yaml")).Must(t, 0)
	if st := kasStatus(t); st.LatestAvailableRevision != 9 || currentIssuer(t) != "" {
		t.Fatalf("after rollback: revision %d issuer %q", st.LatestAvailableRevision, currentIssuer(t))
	}
}

func TestWaitTimeout(t *testing.T) {
	openShift(t, func(o *kasoperator.Operator) { o.Stuck = true })
	start := time.Now()
	r := run(cluster.Kubeconfig, "wait", "--since-revision", "7", "--timeout", "1500ms").
		Must(t, 2, "timed out after 1.5s: waiting for the operator to start a revision after 7")
	if d := time.Since(start); d < 1500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	_ = r
}

// The server ends every watch after 2-4 s here; a rollout of ~9 s must be
// followed to the end through resumed watches.
func TestWaitResumesWatchesTheServerCloses(t *testing.T) {
	op := openShift(t, func(o *kasoperator.Operator) { o.RaiseDelay = time.Second; o.StepDelay = 1300 * time.Millisecond })
	patch := []byte(`{"spec":{"serviceAccountIssuer":"https://oidc.example.com/slow"}}`)
	if _, err := dyn.Resource(openshift.AuthenticationGVR).Patch(context.Background(), "cluster", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	var summaries []string
	w := &openshift.Waiter{Client: dyn, SinceRevision: 7,
		OnReconnect: func(r string) { reasons = append(reasons, r) },
		OnProgress:  func(p openshift.Progress) { summaries = append(summaries, p.Summary()) }}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := w.Wait(ctx)
	if err != nil || !p.Done || p.Revision != 8 {
		t.Fatalf("%v %+v", err, p)
	}
	closed := 0
	for _, r := range reasons {
		if strings.HasPrefix(r, "watch closed by the server") {
			closed++
		}
	}
	if closed == 0 {
		t.Fatalf("no watch was closed by the server during a %s wait: %v", time.Since(op.LastWrite()), reasons)
	}
	// Progress went node by node, in the shown format.
	joined := strings.Join(summaries, "\n")
	for _, s := range []string{"waiting for the operator to start a revision after 7", "0/3 nodes at revision 8 (master-0 installing)", "2/3 nodes at revision 8 (master-2 installing)", "3/3 nodes at revision 8"} {
		if !strings.Contains(joined, s) {
			t.Errorf("progress lacks %q:\n%s", s, joined)
		}
	}
	t.Logf("%d watches closed by the server and resumed", closed)
}

func TestRotateRefusesAtTenTrustedIssuers(t *testing.T) {
	op := openShift(t, nil)
	var trusted []openshift.ServiceAccountIssuer
	trusted = append(trusted, openshift.ServiceAccountIssuer{Name: openshift.DefaultIssuer})
	for i := 1; i < 10; i++ {
		trusted = append(trusted, openshift.ServiceAccountIssuer{Name: fmt.Sprintf("https://old-%d.example.com", i), ExpirationTime: time.Now().Add(time.Duration(i) * time.Hour).UTC().Format(time.RFC3339)})
	}
	resetOp(t, op, "", 7, trusted)
	backup := filepath.Join(t.TempDir(), "b.yaml")
	run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/11th", "--yes", "--backup", backup).
		Must(t, 1, "10 service-account issuers are already trusted, the operator's limit")
	if currentIssuer(t) != "" {
		t.Fatal("issuer changed")
	}
	if _, err := os.Stat(backup); err == nil {
		t.Fatal("a refused change wrote a backup")
	}
}

func TestRotateValidatesTheIssuer(t *testing.T) {
	openShift(t, nil)
	run(cluster.Kubeconfig, "rotate", "issuer", "http://oidc.example.com", "--yes").Must(t, 2, "is not https", "--allow-non-https")
	run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/?x=1", "--yes").Must(t, 2, "must not have a query")
	run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/x").Must(t, 2, "add --yes to confirm")
	run(cluster.Kubeconfig, "rotate", "issuer", "https://kubernetes.default.svc", "--yes").Must(t, 1, "nothing to change")
	r := run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/x", "--dry-run=client").Must(t, 0, "dry run (client): nothing changed")
	_ = r
	if currentIssuer(t) != "" {
		t.Fatal("validation failures or dry run changed the issuer")
	}
}

func TestRotateRestartsWorkloads(t *testing.T) {
	openShift(t, nil)
	ctx := context.Background()
	app := cluster.CreateNamespace(t, "app")
	sys := cluster.CreateNamespace(t, "kube-sys")
	labels := map[string]string{"app": "x"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/x"}}}}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	for _, ns := range []string{app, sys} {
		if _, err := cluster.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cluster.Client.AppsV1().StatefulSets(app).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.AppsV1().DaemonSets(app).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"}, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// --restart pods needs --yes.
	run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/w", "--restart", "pods").Must(t, 2, "--restart pods deletes every pod")

	r := run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/w", "--yes", "--backup", filepath.Join(t.TempDir(), "b.yaml"),
		"--restart", "workloads", "--restart-pause", "0", "-o", "json").Must(t, 0, "left alone: ", "add --restart-system")
	var out rotateJSON
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || out.Restart == nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	restarted := strings.Join(out.Restart.Restarted, ",")
	for _, id := range []string{"deployment/" + app + "/web", "statefulset/" + app + "/db", "daemonset/" + app + "/agent"} {
		if !strings.Contains(restarted, id) {
			t.Errorf("%s not in restarted: %s", id, restarted)
		}
	}
	if strings.Contains(restarted, sys) {
		t.Errorf("restarted in %s: %s", sys, restarted)
	}
	ann := "kubectl.kubernetes.io/restartedAt"
	d, _ := cluster.Client.AppsV1().Deployments(app).Get(ctx, "web", metav1.GetOptions{})
	s, _ := cluster.Client.AppsV1().StatefulSets(app).Get(ctx, "db", metav1.GetOptions{})
	ds, _ := cluster.Client.AppsV1().DaemonSets(app).Get(ctx, "agent", metav1.GetOptions{})
	for kind, a := range map[string]map[string]string{"deployment": d.Spec.Template.Annotations, "statefulset": s.Spec.Template.Annotations, "daemonset": ds.Spec.Template.Annotations} {
		if _, err := time.Parse(time.RFC3339, a[ann]); err != nil {
			t.Errorf("%s pod template: %s = %q", kind, ann, a[ann])
		}
	}
	sd, _ := cluster.Client.AppsV1().Deployments(sys).Get(ctx, "web", metav1.GetOptions{})
	if _, ok := sd.Spec.Template.Annotations[ann]; ok {
		t.Errorf("deployment in %s was restarted without --restart-system", sys)
	}
	skipped := strings.Join(out.Restart.SkippedNamespaces, ",")
	if !strings.Contains(skipped, sys) || !strings.Contains(skipped, "kube-system") {
		t.Errorf("skipped namespaces: %s", skipped)
	}
}

// --restart pods (the documented fallback) deletes the pods of the chosen
// namespaces, and only with --yes.
func TestRotateRestartPodsDeletesPods(t *testing.T) {
	openShift(t, nil)
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "pods")
	for _, n := range []string{"a", "b"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/x"}}}}
		if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	run(cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/p", "--yes", "--backup", filepath.Join(t.TempDir(), "b.yaml"),
		"--restart", "pods", "--restart-namespace", ns).Must(t, 0, "deleted 2 pods in 1 namespaces")
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		l, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, err
	})
}
