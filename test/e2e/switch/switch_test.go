package switche2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// The whole path of a migration: four kinds of workloads that mount an
// old legacy token are switched, roll out on kwok, no pod reads the Secret
// any more, migrate --apply then invalidates it, and restoring both
// folders in the order the tool names puts the Secret and the templates
// back (templates byte for byte).
func TestSwitchMigrateRestore(t *testing.T) {
	ns := cluster.CreateNamespace(t, "e2e")
	cluster.CreateLegacySecret(t, ns, "app", "app-token", true)
	cluster.BackdateSecret(t, ns, "app-token", framework.DaysAgo(3*365))

	createDeployment(t, ns, "web", 2, podSpec("app", "app-token", nil, nil), nil)
	// items, a per-item mode and a defaultMode that must survive.
	cluster.CreateStatefulSet(t, ns, "db", 1, template("db", podSpec("app", "app-token", []corev1.KeyToPath{
		{Key: "token", Path: "auth/jwt"}, {Key: "ca.crt", Path: "ca.pem", Mode: framework.Ptr[int32](0o400)}}, framework.Ptr[int32](0o440))))
	cluster.CreateDaemonSet(t, ns, "agent", template("agent", podSpec("app", "app-token", nil, nil)))
	createCronJob(t, ns, "report", podSpec("app", "app-token", nil, nil))
	for _, k := range [][2]string{{"Deployment", "web"}, {"StatefulSet", "db"}, {"DaemonSet", "agent"}} {
		cluster.WaitRolledOut(t, k[0], ns, k[1], rolloutTimeout)
	}
	kinds := [][2]string{{"Deployment", "web"}, {"StatefulSet", "db"}, {"DaemonSet", "agent"}, {"CronJob", "report"}}
	before := map[string][]byte{}
	for _, k := range kinds {
		before[k[0]+"/"+k[1]] = templateJSON(t, k[0], ns, k[1])
	}
	if len(podsReading(t, ns, "app-token")) == 0 {
		t.Fatal("setup: no pod reads the Secret")
	}

	// The plan changes nothing and shows a diff per workload.
	plan := run(t, "switch", "-n", ns).MustCode(t, 0)
	for _, k := range kinds {
		head := strings.ToLower(k[0]) + "/" + k[1] + " -n " + ns + ": switchable (reads app-token)"
		if !strings.Contains(plan.Stdout, head) {
			t.Fatalf("plan lacks %q:\n%s", head, plan.Stdout)
		}
	}
	if !strings.Contains(plan.Stdout, "+++ MERGED/apps.v1.Deployment."+ns+".web") || !strings.Contains(plan.Stdout, "+      - serviceAccountToken:") {
		t.Fatalf("plan shows no diff:\n%s", plan.Stdout)
	}
	for _, k := range kinds {
		if !bytes.Equal(templateJSON(t, k[0], ns, k[1]), before[k[0]+"/"+k[1]]) {
			t.Fatalf("the plan changed %s", k)
		}
	}

	switchDir, migrateDir := backupDirs(t)
	start := time.Now()
	r := run(t, "switch", "-n", ns, "--apply", "--yes", "--backup-dir", switchDir, "-o", "json").MustCode(t, 0)
	t.Logf("switch --apply with rollouts: %s", time.Since(start).Round(time.Millisecond))
	got := framework.WorkloadOutcomes(t, r.Stdout)
	wantResult(t, got, "Deployment/web", switcher.OutSwitched)
	wantResult(t, got, "StatefulSet/db", switcher.OutSwitched)
	wantResult(t, got, "DaemonSet/agent", switcher.OutSwitched)
	if o := wantResult(t, got, "CronJob/report", switcher.OutSwitched); !strings.Contains(o.Message, "next Job") {
		t.Fatalf("CronJob: %+v", o)
	}
	// Rolled out as kubectl rollout status judges it, right when switch says so.
	for _, k := range kinds[:3] {
		if msg, done, err := cluster.RolloutStatus(ctx, k[0], ns, k[1]); err != nil || !done {
			t.Fatalf("%s reported switched but rollout status says %q (%v)", k, msg, err)
		}
	}
	if !strings.Contains(r.Stderr, "Read by nothing now in "+ns+": app-token. Judge them with: kubectl bound-token migrate -n "+ns+" app-token") {
		t.Fatalf("stderr does not name the freed Secret:\n%s", r.Stderr)
	}

	// The layout: the volume keeps its name and mount, follows the items.
	web := podTemplateOf(t, "Deployment", ns, "web")
	pv := web.Spec.Volumes[0].Projected
	if web.Spec.Volumes[0].Name != "tok" || pv == nil || len(pv.Sources) != 3 ||
		pv.Sources[0].ServiceAccountToken == nil || pv.Sources[0].ServiceAccountToken.Path != "token" || *pv.Sources[0].ServiceAccountToken.ExpirationSeconds != 3607 ||
		pv.Sources[1].ConfigMap == nil || pv.Sources[1].ConfigMap.Name != "kube-root-ca.crt" ||
		pv.Sources[2].DownwardAPI == nil || pv.Sources[2].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.namespace" {
		t.Fatalf("web's volume: %+v", web.Spec.Volumes[0])
	}
	if m := web.Spec.Containers[0].VolumeMounts[0]; m.Name != "tok" || m.MountPath != "/var/run/secrets/app" {
		t.Fatalf("mount changed: %+v", m)
	}
	db := podTemplateOf(t, "StatefulSet", ns, "db").Spec.Volumes[0].Projected
	if db == nil || *db.DefaultMode != 0o440 || len(db.Sources) != 2 || db.Sources[0].ServiceAccountToken.Path != "auth/jwt" ||
		db.Sources[1].ConfigMap.Items[0].Path != "ca.pem" || *db.Sources[1].ConfigMap.Items[0].Mode != 0o400 {
		t.Fatalf("db's items and modes did not survive: %+v", db)
	}

	// No pod reads the Secret: old pods are gone, new ones project.
	cluster.Eventually(t, rolloutTimeout, func() (bool, error) {
		rd := podsReading(t, ns, "app-token")
		return len(rd) == 0, errorf("pods still read app-token: %v", rd)
	})

	// A new pod's identity is the ServiceAccount's, from the token its
	// kubelet would request for the switched volume.
	pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": "web"}.String()})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("web pods: %v %v", pods, err)
	}
	pod := pods.Items[0]
	toks, err := cluster.KubeletTokens(ctx, &pod)
	if err != nil {
		t.Fatal(err)
	}
	proved := false
	for _, tok := range toks {
		if tok.Volume != "tok" {
			continue
		}
		rev, err := cluster.ReviewToken(ctx, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		if !rev.Status.Authenticated || rev.Status.User.Username != "system:serviceaccount:"+ns+":app" ||
			strings.Join(rev.Status.User.Extra["authentication.kubernetes.io/pod-name"], "") != pod.Name {
			t.Fatalf("the switched volume's token: %+v", rev.Status)
		}
		proved = true
	}
	if !proved {
		t.Fatalf("no token for volume tok among %d", len(toks))
	}

	// The freed Secret is now what migrate invalidates.
	m := run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", migrateDir, "-o", "json").MustCode(t, 0)
	wantResult(t, framework.WorkloadOutcomes(t, m.Stdout), "app-token", legacy.OutInvalidated)
	s, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, "app-token", metav1.GetOptions{})
	if err != nil || s.Labels[framework.InvalidSinceLabel] == "" {
		t.Fatalf("app-token not invalidated: %v %v", s.Labels, err)
	}

	// Templates first would mount an invalid token: refused, naming the
	// folder to restore first.
	bad := run(t, "restore", "--from", switchDir, "-o", "json").MustCode(t, 1)
	o := wantResult(t, framework.WorkloadOutcomes(t, bad.Stdout), "Deployment/web", switcher.OutSecretFirst)
	if !strings.Contains(o.Message, "restore --from "+migrateDir) {
		t.Fatalf("the refusal does not name %s: %s", migrateDir, o.Message)
	}
	for _, k := range kinds {
		if bytes.Equal(templateJSON(t, k[0], ns, k[1]), before[k[0]+"/"+k[1]]) {
			t.Fatalf("%s restored although its Secret is invalid", k)
		}
	}
	run(t, "restore", "--from", migrateDir).MustCode(t, 0)
	rr := run(t, "restore", "--from", switchDir, "-o", "json").MustCode(t, 0)
	for _, k := range kinds {
		wantResult(t, framework.WorkloadOutcomes(t, rr.Stdout), k[0]+"/"+k[1], switcher.OutRestored)
		if after := templateJSON(t, k[0], ns, k[1]); !bytes.Equal(after, before[k[0]+"/"+k[1]]) {
			t.Fatalf("%s: template not back byte for byte:\nbefore %s\nafter  %s", k, before[k[0]+"/"+k[1]], after)
		}
	}
	s, _ = cluster.Client.CoreV1().Secrets(ns).Get(ctx, "app-token", metav1.GetOptions{})
	if s.Labels[framework.InvalidSinceLabel] != "" {
		t.Fatal("the Secret is still invalid after its restore")
	}
	// Restore is idempotent.
	again := run(t, "restore", "--from", switchDir, "-o", "json").MustCode(t, 0)
	wantResult(t, framework.WorkloadOutcomes(t, again.Stdout), "Deployment/web", backup.OutUnchanged)
}

type errString string

func (e errString) Error() string { return string(e) }

func errorf(format string, args ...any) error {
	return errString(strings.TrimSpace(sprintf(format, args...)))
}
