package fleet

import (
	"context"
	"strings"
	"testing"

	"github.com/openreports/reports-api/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// migrate --report over a fleet writes into each audited cluster its own
// results (the Secret and uid of that cluster); a cluster that does not
// serve the OpenReports CRDs is one error line and a failed cluster,
// while the others are written.
func TestReportWritesIntoEachCluster(t *testing.T) {
	data(t)
	ctx := context.Background()
	// The real CRDs (framework.InstallCRD reads them from the module
	// go.mod pins), in one and two only; removed when the test ends.
	for _, n := range []string{"one", "two"} {
		for _, crd := range []string{"reports.openreports.io", "clusterreports.openreports.io"} {
			clusters[n].InstallCRD(t, crd, true)
		}
	}
	ctxs := map[string]entry{}
	for _, n := range names {
		ctxs[n] = direct(t, clusters[n], "fleet-"+n)
	}
	kc := writeKubeconfig(t, ctxs)
	r := run(t, kc, "migrate", "--contexts", "one,two,three", "--report").MustCode(t, 1)
	r.StderrHas(t,
		"context one: OpenReports: wrote 1 Report (1 result) in 1 namespace, 0 stale Reports deleted, ClusterReport bound-token-migrate",
		"context two: OpenReports: wrote 1 Report (1 result) in 1 namespace, 0 stale Reports deleted, ClusterReport bound-token-migrate",
		"the cluster does not serve reports.openreports.io and clusterreports.openreports.io")
	if strings.Contains(r.Stderr, "context three: OpenReports: wrote") {
		t.Errorf("three has no CRDs, yet something was written:\n%s", r.Stderr)
	}
	// doctor --report: its own ClusterReport in each cluster that serves
	// the CRD (whatever its checks say: exit 0 or 1).
	d := run(t, kc, "doctor", "--contexts", "one,two", "--report")
	if d.Code != 0 && d.Code != 1 {
		t.Fatalf("doctor: exit %d\n%s", d.Code, d.Stderr)
	}
	d.StderrHas(t, "context one: OpenReports: wrote ClusterReport bound-token-doctor (", "context two: OpenReports: wrote ClusterReport bound-token-doctor (")
	for _, n := range []string{"one", "two"} {
		c := clusters[n]
		rc, err := versioned.NewForConfig(c.RESTConfig)
		if err != nil {
			t.Fatal(err)
		}
		dr, err := rc.OpenreportsV1alpha1().ClusterReports().Get(ctx, "bound-token-doctor", metav1.GetOptions{})
		if err != nil || len(dr.Results) == 0 {
			t.Errorf("%s: doctor's ClusterReport: %v", n, err)
		}
	}

	for _, n := range []string{"one", "two"} {
		c := clusters[n]
		rc, err := versioned.NewForConfig(c.RESTConfig)
		if err != nil {
			t.Fatal(err)
		}
		ns := "fleet-" + n
		rep, err := rc.OpenreportsV1alpha1().Reports(ns).Get(ctx, "bound-token-migrate-0", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		sec, err := c.Client.CoreV1().Secrets(ns).Get(ctx, n+"-in-"+ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 1 || rep.Results[0].Subjects[0].Name != sec.Name || rep.Results[0].Subjects[0].UID != sec.UID {
			t.Errorf("%s: the report is not this cluster's own Secret %s (%s): %+v", n, sec.Name, sec.UID, rep.Results)
		}
	}
}
