package cmd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/openreports/reports-api/pkg/client/clientset/versioned"
	reportsfake "github.com/openreports/reports-api/pkg/client/clientset/versioned/fake"
	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/openreports"
)

// reportsClient is the generated fake with server-side apply as create or
// replace (its NewClientset's type converter does not know the module's
// types, and NewSimpleClientset answers an apply of a missing object with
// not found).
func reportsClient() *reportsfake.Clientset {
	c := reportsfake.NewSimpleClientset()
	c.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		if pa.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		var obj runtime.Object = &v1alpha1.Report{}
		if pa.GetResource().Resource == "clusterreports" {
			obj = &v1alpha1.ClusterReport{}
		}
		if err := json.Unmarshal(pa.GetPatch(), obj); err != nil {
			return true, nil, err
		}
		err := c.Tracker().Create(pa.GetResource(), obj, pa.GetNamespace())
		if apierrors.IsAlreadyExists(err) {
			err = c.Tracker().Update(pa.GetResource(), obj, pa.GetNamespace())
		}
		return true, obj, err
	})
	return c
}

// serveReports makes the fake's discovery list the OpenReports API.
func serveReports(cs *fake.Clientset) *fake.Clientset {
	cs.Resources = append(cs.Resources, &metav1.APIResourceList{GroupVersion: openreports.GroupVersion.String(),
		APIResources: []metav1.APIResource{{Name: "reports", Namespaced: true, Kind: "Report"}, {Name: "clusterreports", Kind: "ClusterReport"}}})
	return cs
}

// deny answers no to the SelfSubjectAccessReviews of verb on resource.
func deny(cs *fake.Clientset, verb, resource string) *fake.Clientset {
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		r.Status.Allowed = !(ra.Verb == verb && ra.Resource == resource)
		return true, r, nil
	})
	return cs
}

func migrateReporting(x fakes, rc versioned.Interface) func(cmdutil.Factory, genericiooptions.IOStreams) *cobra.Command {
	return func(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
		o := NewMigrateOptions(s)
		o.Client, o.Metadata, o.Now, o.Reports = x.client, x.metadata, x.clock(), rc
		return newCmdMigrate(f, o)
	}
}

// migrate --report: a cluster that does not serve the API, or a caller
// that may not write it, is one line, exit 2, and nothing written or
// judged; otherwise the Reports and the ClusterReport are written and
// said on stderr.
func TestMigrateReportPreflightAndWrite(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		cs   *fake.Clientset
		want string
	}{
		{"not served", allowAll(oldCluster(now)), "error: the cluster does not serve reports.openreports.io and clusterreports.openreports.io (openreports.io/v1alpha1): install the OpenReports CRDs (github.com/openreports/reports-api, config/crd) first; nothing was written\n"},
		{"forbidden", deny(serveReports(oldCluster(now)), "delete", "reports"), "error: forbidden: you may not delete reports.openreports.io in namespace app; ask for RBAC that allows it, nothing was written\n"},
	} {
		rc := reportsClient()
		_, stderr, code := run(t, cmdRun{cmd: migrateReporting(fakes{client: tc.cs, now: now}, rc)}, "", "migrate", "--report")
		if code != ExitUsage || stderr != tc.want {
			t.Errorf("%s: exit %d, stderr\n%s\nwant\n%s", tc.name, code, stderr, tc.want)
		}
		if n := len(rc.Actions()); n != 0 {
			t.Errorf("%s: %d requests to the reports API", tc.name, n)
		}
		for _, a := range tc.cs.Actions() {
			if a.GetResource().Resource == "secrets" {
				t.Errorf("%s: judged Secrets before refusing", tc.name)
			}
		}
	}

	rc := reportsClient()
	cs := serveReports(allowAll(oldCluster(now)))
	_, stderr, code := run(t, cmdRun{cmd: migrateReporting(fakes{client: cs, now: now}, rc)}, "", "migrate", "--report")
	if code != 0 || !strings.Contains(stderr, "OpenReports: wrote 1 Report (1 result) in 1 namespace, 0 stale Reports deleted, ClusterReport bound-token-migrate (1 result).") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	r, err := rc.OpenreportsV1alpha1().Reports("app").Get(context.Background(), "bound-token-migrate-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Results) != 1 || r.Results[0].Subjects[0].Name != "tok" || r.Results[0].Rule != "invalidate" || r.Summary.Fail != 1 {
		t.Errorf("report: %+v", r)
	}
}

// Every flag that narrows which Secrets of a namespace are judged makes
// the write a merge (openreports.Scope.Narrowed); -n and -A do not.
func TestMigrateReportScope(t *testing.T) {
	for _, tc := range []struct {
		o    MigrateOptions
		want bool
	}{
		{MigrateOptions{}, false},
		{MigrateOptions{AllNamespaces: true}, false},
		{MigrateOptions{Selector: "a=b"}, true},
		{MigrateOptions{Names: []string{"tok"}}, true},
		{MigrateOptions{AutoOnly: true}, true},
	} {
		if got := tc.o.reportScope("ns"); got.Narrowed != tc.want || got.Namespace != "ns" {
			t.Errorf("%+v: scope %+v, want narrowed %v", tc.o, got, tc.want)
		}
	}
}
