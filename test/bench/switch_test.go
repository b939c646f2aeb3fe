package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The workload: 200 Deployments that mount one legacy token.
// The kubectl loop costs three processes per Deployment; it runs over a
// sample and is scaled to 200 (its time per Deployment is flat).
const (
	switchDeployments = 200
	switchSample      = 40
)

var (
	switchOnce sync.Once
	switchErr  error
	switchNS   string
	// switchOrig is each Deployment's pod template as created, put back
	// between runs.
	switchOrig map[string]corev1.PodTemplateSpec
)

// switchFixtures: one namespace with ServiceAccount app, its listed legacy
// token Secret app-token, and 200 Deployments labelled bench=switch that
// mount it. The rig has no workload controllers: with --wait=false
// nothing rolls out, and neither side pays for ReplicaSets being made.
func switchFixtures(b *testing.B) {
	b.Helper()
	switchOnce.Do(func() {
		ctx := context.Background()
		switchNS = cluster.CreateNamespace(b, "bench-switch")
		cluster.CreateLegacySecret(b, switchNS, "app", "app-token", true)
		switchOrig = map[string]corev1.PodTemplateSpec{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < switchDeployments; i += 16 {
					name := fmt.Sprintf("web-%03d", i)
					labels := map[string]string{"app": name}
					d := &appsv1.Deployment{
						ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "switch"}},
						Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
							Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
								ServiceAccountName: "app",
								Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
									VolumeMounts: []corev1.VolumeMount{{Name: "tok", MountPath: "/var/run/secrets/app", ReadOnly: true}}}},
								Volumes: []corev1.Volume{{Name: "tok", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-token"}}}},
							}}}}
					got, err := cluster.Client.AppsV1().Deployments(switchNS).Create(ctx, d, metav1.CreateOptions{})
					mu.Lock()
					if err != nil {
						switchErr = err
					} else {
						switchOrig[name] = got.Spec.Template
					}
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
	})
	if switchErr != nil {
		b.Fatal(switchErr)
	}
}

// switchedDeployments counts the bench's Deployments whose volume is
// projected now.
func switchedDeployments(b *testing.B) (switched int, names []string) {
	b.Helper()
	l, err := cluster.Client.AppsV1().Deployments(switchNS).List(context.Background(), metav1.ListOptions{LabelSelector: "bench=switch"})
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range l.Items {
		names = append(names, d.Name)
		if v := d.Spec.Template.Spec.Volumes; len(v) == 1 && v[0].Projected != nil {
			switched++
		}
	}
	return switched, names
}

// resetSwitch puts every template back as created (untimed).
func resetSwitch(b *testing.B) {
	b.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 16)
	for name, tmpl := range switchOrig {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			patch, _ := json.Marshal([]map[string]any{{"op": "replace", "path": "/spec/template", "value": tmpl}})
			_, err := cluster.Client.AppsV1().Deployments(switchNS).Patch(context.Background(), name, types.JSONPatchType, patch, metav1.PatchOptions{})
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	if n, _ := switchedDeployments(b); n != 0 {
		b.Fatalf("reset left %d Deployments switched", n)
	}
}

// buildSwitchEdit builds ./switchedit, the loop's edit step: the same
// rewrite as switch, as a small program a user could have written.
func buildSwitchEdit(b *testing.B) string {
	b.Helper()
	out := filepath.Join(cluster.Dir, "switchedit")
	c := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./switchedit")
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := c.CombinedOutput(); err != nil {
		b.Fatalf("build switchedit: %v\n%s", err, msg)
	}
	return out
}

// BenchmarkSwitch200: switching 200 Deployments onto projected tokens.
// Ours: `switch` (the plan) then `switch --apply --yes --wait=false` (a
// verified backup of each, patches with a resourceVersion precondition),
// default --concurrency and --qps. The alternative is the loop a user
// writes today, one Deployment at a time:
//
//	kubectl get deployments -l bench=switch -o name
//	for d in ...; do
//	  kubectl get $d -o yaml > $d.yaml          # also the backup
//	  switchedit app-token < $d.yaml > new.yaml # the same rewrite
//	  kubectl apply -f new.yaml
//	done
//
// timed over switchSample Deployments and scaled to 200 (the listing is
// counted once). Peak RSS: the larger of our two processes against the
// largest process of the loop.
func BenchmarkSwitch200(b *testing.B) {
	plugin, kubectl := binaries(b)
	edit := buildSwitchEdit(b)
	switchFixtures(b)
	kc := []string{"--kubeconfig", cluster.Kubeconfig}
	sel := []string{"switch", "-n", switchNS, "-l", "bench=switch"}
	var ours, alt time.Duration
	var oursRSS, altRSS int64
	n := 0
	for b.Loop() {
		resetSwitch(b)
		dir := filepath.Join(b.TempDir(), "backup")
		d, rss, out := runProc(b, "", plugin, append(kc, sel...)...)
		if got := strings.Count(out, ": switchable (reads app-token)"); got != switchDeployments {
			b.Fatalf("the plan has %d switchable Deployments, want %d", got, switchDeployments)
		}
		ours, oursRSS = ours+d, max(oursRSS, rss)
		d, rss, out = runProc(b, "", plugin, append(append(kc, sel...), "--apply", "--yes", "--wait=false", "--backup-dir", dir, "-o", "name")...)
		if got := strings.Count(out, "deployment/"); got != switchDeployments {
			b.Fatalf("--apply switched %d Deployments, want %d", got, switchDeployments)
		}
		ours, oursRSS = ours+d, max(oursRSS, rss)
		if got, _ := switchedDeployments(b); got != switchDeployments {
			b.Fatalf("%d Deployments are switched, want %d", got, switchDeployments)
		}

		resetSwitch(b)
		work := b.TempDir()
		d, rss, out = runProc(b, "", kubectl, append(kc, "get", "deployments", "-n", switchNS, "-l", "bench=switch", "-o", "name")...)
		list, loop := d, time.Duration(0)
		altRSS = max(altRSS, rss)
		names := strings.Fields(out)
		if len(names) != switchDeployments {
			b.Fatalf("kubectl listed %d Deployments", len(names))
		}
		for _, ref := range names[:switchSample] {
			file := filepath.Join(work, strings.TrimPrefix(ref, "deployment.apps/")+".yaml")
			d, rss, manifest := runProc(b, "", kubectl, append(kc, "get", "-n", switchNS, ref, "-o", "yaml")...)
			loop, altRSS = loop+d, max(altRSS, rss)
			if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
				b.Fatal(err)
			}
			d, rss, edited := runProc(b, manifest, edit, "app-token")
			loop, altRSS = loop+d, max(altRSS, rss)
			newFile := filepath.Join(work, "new.yaml")
			if err := os.WriteFile(newFile, []byte(edited), 0o600); err != nil {
				b.Fatal(err)
			}
			d, rss, _ = runProc(b, "", kubectl, append(kc, "apply", "-f", newFile)...)
			loop, altRSS = loop+d, max(altRSS, rss)
		}
		if got, _ := switchedDeployments(b); got != switchSample {
			b.Fatalf("the kubectl loop switched %d Deployments, want %d", got, switchSample)
		}
		alt += list + loop*switchDeployments/switchSample
		n++
	}
	resetSwitch(b)
	sec := func(d time.Duration) float64 { return d.Seconds() / float64(n) }
	b.ReportMetric(sec(ours), "ours-s")
	b.ReportMetric(sec(alt), "alt-s")
	b.ReportMetric(float64(oursRSS)/(1<<20), "ours-peak-RSS-MB")
	b.ReportMetric(float64(altRSS)/(1<<20), "alt-peak-RSS-MB")
}
