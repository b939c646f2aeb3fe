package cmd

import (
	"errors"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// guardWatchFakes are a typed client that allows every access review but
// the denied ones, and a metadata client holding one guarded Secret in
// namespace app whose token was presented on 2026-12-07.
func guardWatchFakes(t *testing.T, denied ...string) (*fake.Clientset, *metadatafake.FakeMetadataClient) {
	t.Helper()
	cs := fake.NewClientset()
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		r.Status.Allowed = true
		for _, d := range denied {
			if d == ra.Verb+" "+ra.Resource {
				r.Status.Allowed = false
			}
		}
		return true, r, nil
	})
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	scheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("Secret"), &metav1.PartialObjectMetadata{})
	md := metadatafake.NewSimpleMetadataClient(scheme, &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "builder-token", UID: "u1",
			Labels: map[string]string{legacy.LabelInvalidSince: "2026-12-01", legacy.LabelGuardUntil: "2027-03-01", legacy.LabelLastUsed: "2026-12-07"},
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder", legacy.AnnotationInvalidatedOn: "2026-12-01",
				legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp, legacy.AnnotationLastUsedBefore: legacy.LastUsedNone}},
	})
	return cs, md
}

func TestGuardWatchCommand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		denied   []string
		failing  bool
		wantCode int
		wantOut  string
		wantErr  []string
		wantNS   string
	}{
		{name: "restores, ends after --for", args: []string{"--for", "300ms"}, wantCode: ExitOK,
			wantOut: "app/builder-token restored: its token was presented on 2026-12-07 (service account builder)\n", wantNS: "app"},
		{name: "-A watches every namespace", args: []string{"-A", "--for", "300ms"}, wantCode: ExitOK,
			wantOut: "app/builder-token restored: its token was presented on 2026-12-07 (service account builder)\n", wantNS: ""},
		{name: "a restore that keeps failing", args: []string{"--for", "1s"}, failing: true, wantCode: ExitFailed,
			wantErr: []string{"warning: cannot restore app/builder-token yet: ", "; retrying\n",
				"error: app/builder-token is still invalid, its restore failed: ",
				"error: 1 restore(s) failed: the clients presenting those tokens are still refused\n"}},
		{name: "no right to patch", args: []string{"--for", "1s"}, denied: []string{"patch secrets"}, wantCode: ExitUsage,
			wantErr: []string{"error: the guard did not start: forbidden: you may not patch secrets in namespace app"}},
		{name: "no right to create events: a warning", args: []string{"--for", "300ms"}, denied: []string{"create events"}, wantCode: ExitOK,
			wantOut: "app/builder-token restored: its token was presented on 2026-12-07 (service account builder)\n",
			wantErr: []string{"warning: restores will leave no Event: forbidden: you may not create events in namespace app"}},
		{name: "negative --for", args: []string{"--for", "-1s"}, wantCode: ExitUsage,
			wantErr: []string{"error: --for must be positive, or 0 to guard until interrupted\n"}},
		{name: "an argument", args: []string{"x"}, wantCode: ExitUsage,
			wantErr: []string{"error: unknown command \"x\" for \"kubectl bound-token guard watch\"; see 'kubectl bound-token guard watch --help' for usage\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, md := guardWatchFakes(t, tc.denied...)
			if tc.failing {
				md.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "builder-token", errors.New("no"))
				})
			}
			start := time.Now()
			out, errOut, code := run(t, cmdRun{cmd: fakes{client: cs, metadata: md}.guard}, "", append([]string{"guard", "watch"}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.wantCode, errOut)
			}
			if out != tc.wantOut {
				t.Errorf("stdout %q, want %q", out, tc.wantOut)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if len(tc.wantErr) == 0 && errOut != "" {
				t.Errorf("stderr not on a terminal: %q", errOut)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			if tc.wantNS != "" || tc.name == "-A watches every namespace" {
				for _, a := range md.Actions() {
					if a.GetVerb() == "list" || a.GetVerb() == "watch" {
						if a.GetNamespace() != tc.wantNS {
							t.Errorf("%s in namespace %q, want %q", a.GetVerb(), a.GetNamespace(), tc.wantNS)
						}
					}
				}
				ev, _ := cs.CoreV1().Events("app").List(t.Context(), metav1.ListOptions{})
				if len(ev.Items) != 1 || ev.Items[0].Reason != "LegacyTokenRestoredOnUse" {
					t.Errorf("events %v", ev.Items)
				}
			}
		})
	}
}
