package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
)

const oldIssuer = "https://old.example.com"

func authentication(issuer string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "config.openshift.io/v1", "kind": "Authentication",
		"metadata": map[string]any{"name": "cluster", "resourceVersion": "5"},
		"spec":     map[string]any{"serviceAccountIssuer": issuer},
	}}
	return u
}

func kubeAPIServer(st openshift.KubeAPIServerStatus) *unstructured.Unstructured {
	m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operator.openshift.io/v1", "kind": "KubeAPIServer",
		"metadata": map[string]any{"name": "cluster"}, "status": m,
	}}
}

// atRevision is a finished rollout to rev on two nodes.
func atRevision(rev int32, issuers ...openshift.ServiceAccountIssuer) openshift.KubeAPIServerStatus {
	return openshift.KubeAPIServerStatus{
		LatestAvailableRevision: rev,
		NodeStatuses: []openshift.NodeStatus{{NodeName: "m0", CurrentRevision: rev, TargetRevision: rev},
			{NodeName: "m1", CurrentRevision: rev, TargetRevision: rev}},
		Conditions: []openshift.Condition{{Type: openshift.CondNodeInstallerProgressing, Status: "False",
			Reason: openshift.ReasonAllNodesAtLatest, Message: "2 nodes are at revision " + itoa(rev)}},
		ServiceAccountIssuers: issuers,
	}
}

func itoa(i int32) string { b, _ := json.Marshal(i); return string(b) }

// openShift is a cluster at revision 7 with oldIssuer; a patch of the
// issuer makes the operator roll out revision 8 and trust oldIssuer for 24h,
// as cluster-kube-apiserver-operator does.
func openShift() *fakeDynamic {
	dyn := newDynamic(authentication(oldIssuer), kubeAPIServer(atRevision(7, openshift.ServiceAccountIssuer{Name: oldIssuer})))
	dyn.PrependReactor("patch", "authentications", func(a clienttesting.Action) (bool, runtime.Object, error) {
		var patch struct {
			Spec struct {
				Issuer string `json:"serviceAccountIssuer"`
			} `json:"spec"`
		}
		_ = json.Unmarshal(a.(clienttesting.PatchAction).GetPatch(), &patch)
		st := atRevision(8, openshift.ServiceAccountIssuer{Name: patch.Spec.Issuer},
			openshift.ServiceAccountIssuer{Name: oldIssuer, ExpirationTime: "2026-11-24T08:00:00Z"})
		_ = dyn.Tracker().Update(openshift.KubeAPIServerGVR, kubeAPIServer(st), "")
		return false, nil, nil
	})
	return dyn
}

func TestRotateIssuerValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*RotateIssuerOptions)
		want string // "" = valid
	}{
		{"issuer", func(o *RotateIssuerOptions) { o.Issuer = "https://oidc.example.com" }, ""},
		{"nothing", func(o *RotateIssuerOptions) {}, "give the new issuer URL, or --rollback --from FILE"},
		{"http", func(o *RotateIssuerOptions) { o.Issuer = "http://oidc.example.com" }, `issuer "http://oidc.example.com" is not https: OpenShift then disables issuer discovery; pass --allow-non-https if that is intended`},
		{"http allowed", func(o *RotateIssuerOptions) { o.Issuer, o.AllowNonHTTPS = "http://oidc.example.com", true }, ""},
		{"query", func(o *RotateIssuerOptions) { o.Issuer = "https://oidc.example.com/?x=1" }, `issuer "https://oidc.example.com/?x=1" must not have a query, fragment or user info`},
		{"rollback without from", func(o *RotateIssuerOptions) { o.Rollback = true }, "--rollback needs --from FILE (a backup written by rotate issuer)"},
		{"from without rollback", func(o *RotateIssuerOptions) { o.From, o.Issuer = "x", "https://a.example.com" }, "--from is only used with --rollback"},
		{"rollback and issuer", func(o *RotateIssuerOptions) { o.Rollback, o.From, o.Issuer = true, "x", "https://a.example.com" }, "give the issuer URL or --rollback --from FILE, not both"},
		{"bad restart", func(o *RotateIssuerOptions) { o.Issuer, o.Restart = "https://a.example.com", "nodes" }, `--restart "nodes" is not supported; use one of none, workloads, pods`},
		{"pods without yes", func(o *RotateIssuerOptions) { o.Issuer, o.Restart = "https://a.example.com", "pods" }, "--restart pods deletes every pod and interrupts service; add --yes to confirm, or use --restart workloads"},
		{"pods with yes", func(o *RotateIssuerOptions) { o.Issuer, o.Restart, o.Yes = "https://a.example.com", "pods", true }, ""},
		{"zero timeout", func(o *RotateIssuerOptions) { o.Issuer, o.Timeout = "https://a.example.com", 0 }, "--timeout must be positive and --restart-pause not negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewRotateIssuerOptions(genericiooptionsDiscard())
			tc.set(o)
			got := ""
			if err := o.Validate(); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRotateIssuer(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "taken.yaml")
	_ = os.WriteFile(existing, []byte("x"), 0o600)
	backupOf := func(issuer string) string {
		b, _ := yaml.Marshal(authentication(issuer).Object)
		f := filepath.Join(t.TempDir(), "backup.yaml")
		_ = os.WriteFile(f, b, 0o600)
		return f
	}
	for _, tc := range []struct {
		name      string
		args      []string
		stdin     string
		notOS     bool
		wantCode  int
		wantOut   string   // exact stdout; "-" skips
		wantErr   []string // substrings of stderr, in order
		wantPatch []string
	}{
		{
			name: "client dry run changes nothing", args: []string{"https://new.example.com", "--dry-run=client"},
			wantOut: "", wantErr: []string{"current issuer: " + oldIssuer, "new issuer:     https://new.example.com", "dry run (client): nothing changed"},
		},
		{
			name: "bare --dry-run is client, as in kubectl", args: []string{"https://new.example.com", "--dry-run"},
			wantOut: "", wantErr: []string{"dry run (client): nothing changed"},
		},
		{
			name: "server dry run sends the patch with dryRun=All", args: []string{"https://new.example.com", "--dry-run=server", "--yes"},
			wantOut: "", wantErr: []string{"dry run (server): nothing changed"},
			wantPatch: []string{`{"metadata":{"resourceVersion":"5"},"spec":{"serviceAccountIssuer":"https://new.example.com"}} dryRun=All`},
		},
		{
			name: "change, wait, trust window", args: []string{"https://new.example.com", "--yes", "--backup", filepath.Join(dir, "b1.yaml")},
			wantOut: "issuer https://new.example.com active\n",
			wantErr: []string{"backup of authentications.config.openshift.io/cluster: " + filepath.Join(dir, "b1.yaml") + " (restore with: kubectl bound-token rotate issuer --rollback --from ",
				"spec.serviceAccountIssuer set to https://new.example.com; waiting for a kube-apiserver revision after 7",
				"kube-apiserver at revision 8 on 2/2 nodes", "previous issuer " + oldIssuer + " trusted until 2026-11-24T08:00Z",
				"pods keep tokens from the previous issuer until they restart"},
			wantPatch: []string{`{"metadata":{"resourceVersion":"5"},"spec":{"serviceAccountIssuer":"https://new.example.com"}}`},
		},
		{
			name: "jsonpath", args: []string{"https://new.example.com", "--yes", "--backup", filepath.Join(dir, "b2.yaml"), "-o", "jsonpath={.kind} {.previousIssuer} {.issuer} {.rollout.revision}"},
			wantOut:   "IssuerRotation " + oldIssuer + " https://new.example.com 8",
			wantPatch: []string{`{"metadata":{"resourceVersion":"5"},"spec":{"serviceAccountIssuer":"https://new.example.com"}}`},
		},
		{
			name: "rollback restores the backup's issuer", args: []string{"--rollback", "--from", backupOf("https://back.example.com"), "--yes", "--backup", filepath.Join(dir, "b3.yaml")},
			wantOut:   "issuer https://back.example.com active\n",
			wantPatch: []string{`{"metadata":{"resourceVersion":"5"},"spec":{"serviceAccountIssuer":"https://back.example.com"}}`},
		},
		{
			name: "a bad -o fails before anything is read", args: []string{"https://new.example.com", "--yes", "--backup", filepath.Join(dir, "b5.yaml"), "-o", "wide"},
			wantCode: ExitUsage, wantOut: "",
			wantErr: []string{`error: --output "wide" is not supported; use one of: ` + resultFormats},
		},
		{
			name: "a bad --dry-run", args: []string{"https://new.example.com", "--dry-run=maybe"},
			wantCode: ExitUsage, wantOut: "", wantErr: []string{`error: Invalid dry-run value (maybe). Must be "none", "server", or "client".`},
		},
		{
			name: "a script must say --yes", args: []string{"https://new.example.com", "--backup", filepath.Join(dir, "b4.yaml")},
			wantCode: ExitUsage, wantOut: "", wantErr: []string{"current issuer: ", "error: changing the issuer rolls out kube-apiserver on every node; add --yes to confirm"},
		},
		{
			name: "an existing backup file is never replaced", args: []string{"https://new.example.com", "--yes", "--backup", existing},
			wantCode: ExitUsage, wantOut: "", wantErr: []string{"error: backup file " + existing + " already exists and is never replaced: file exists; choose another --backup; nothing changed"},
		},
		{
			name: "same issuer", args: []string{oldIssuer, "--yes"},
			wantCode: ExitFailed, wantOut: "", wantErr: []string{"error: the service-account issuer already is " + oldIssuer + ": nothing to change"},
		},
		{
			name: "not OpenShift", args: []string{"https://new.example.com", "--yes"}, notOS: true,
			wantCode: ExitUsage, wantOut: "", wantErr: []string{"error: this cluster does not serve kubeapiservers.operator.openshift.io: it is not OpenShift"},
		},
		{
			name: "a backup that is not one", args: []string{"--rollback", "--from", existing, "--yes"},
			wantCode: ExitUsage, wantOut: "", wantErr: []string{"error: " + existing + " is not"},
		},
		{
			name: "two arguments", args: []string{"https://a.example.com", "https://b.example.com"},
			wantCode: ExitUsage, wantOut: "", wantErr: []string{"error: accepts at most 1 arg(s), received 2; see 'kubectl bound-token issuer --help' for usage"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dyn := openShift()
			if tc.notOS {
				dyn = newDynamic()
			}
			tf := newAPITestFactory(t, "default", dyn, nil)
			out, errOut, code := run(t, cmdRun{cmd: NewCmdRotateIssuer, f: tf}, tc.stdin, append([]string{"issuer"}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			if tc.wantOut != "-" {
				if diff := cmp.Diff(tc.wantOut, out); diff != "" {
					t.Errorf("stdout (-want +got):\n%s", diff)
				}
			}
			rest := errOut
			for _, w := range tc.wantErr {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stderr lacks %q (in order):\n%s", w, errOut)
				}
				rest = rest[i+len(w):]
			}
			if tc.wantCode != 0 && len(lines(errOut)) > 0 && !strings.HasPrefix(lines(errOut)[len(lines(errOut))-1], "error: ") {
				t.Errorf("the last line of stderr is not the error:\n%s", errOut)
			}
			if diff := cmp.Diff(tc.wantPatch, dyn.patches); diff != "" {
				t.Errorf("patches (-want +got):\n%s", diff)
			}
		})
	}
}

// -o json and yaml print the typed result with the plugin's apiVersion.
func TestRotateIssuerPrinters(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			tf := newAPITestFactory(t, "default", openShift(), nil)
			out, errOut, code := run(t, cmdRun{cmd: NewCmdRotateIssuer, f: tf}, "", "issuer", "https://new.example.com", "--dry-run=client", "-o", format)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got map[string]any
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			want := map[string]any{"apiVersion": "bound-token.kubectl.io/v1alpha1", "kind": "IssuerRotation",
				"previousIssuer": oldIssuer, "issuer": "https://new.example.com", "sinceRevision": float64(7), "dryRun": "client",
				"rollout": map[string]any{"revision": float64(0), "sinceRevision": float64(0), "nodes": float64(0), "nodesAtRevision": float64(0),
					"done": false, "failed": false, "nodeStatuses": nil}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("-o %s (-want +got):\n%s", format, diff)
			}
		})
	}
}

// A rollout that does not finish in --timeout is exit 2, says how to follow
// or undo the change, and -o still prints the result.
func TestRotateIssuerTimeout(t *testing.T) {
	dyn := newDynamic(authentication(oldIssuer), kubeAPIServer(atRevision(7)))
	tf := newAPITestFactory(t, "default", dyn, nil)
	backup := filepath.Join(t.TempDir(), "b.yaml")
	out, errOut, code := run(t, cmdRun{cmd: NewCmdRotateIssuer, f: tf}, "", "issuer", "https://new.example.com", "--yes", "--backup", backup, "--timeout", "300ms", "-o", "jsonpath={.issuer}")
	want := "error: timed out after 300ms: "
	last := lines(errOut)[len(lines(errOut))-1]
	if code != ExitUsage || out != "https://new.example.com" || !strings.HasPrefix(last, want) ||
		!strings.HasSuffix(last, "; the issuer stays https://new.example.com: follow with `kubectl bound-token wait --since-revision 7` or undo with `kubectl bound-token rotate issuer --rollback --from "+backup+"`") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestRotateDeprecatedForms(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		notice   string // the first line of stderr
		wantErr  string // a later line of stderr
	}{
		{"--issuer", []string{"--issuer", "https://new.example.com", "--dry-run"}, 0,
			"warning: 'kubectl bound-token rotate --issuer URL' is deprecated and will be removed in the next release; use 'kubectl bound-token rotate issuer URL'",
			"dry run (client): nothing changed"},
		{"--rollback", []string{"--rollback", "--from", "none.yaml", "--yes"}, ExitUsage,
			"warning: 'kubectl bound-token rotate --rollback --from FILE' is deprecated and will be removed in the next release; use 'kubectl bound-token rotate issuer --rollback --from FILE'",
			"error: open none.yaml: no such file or directory"},
		{"--hosted-cluster", []string{"--hosted-cluster", "prod", "--dry-run=client", "--yes"}, ExitUsage,
			"warning: 'kubectl bound-token rotate --hosted-cluster NAME' is deprecated and will be removed in the next release; use 'kubectl bound-token rotate hosted-cluster NAME'",
			"error: hostedcluster clusters/prod not found"},
		{"a flag of the other subcommand", []string{"--hosted-cluster", "prod", "--restart", "workloads"}, ExitUsage,
			"error: --restart is not a flag of 'kubectl bound-token rotate hosted-cluster'", ""},
		{"--issuer with --force", []string{"--issuer", "https://new.example.com", "--force"}, ExitUsage,
			"error: --force is not a flag of 'kubectl bound-token rotate issuer'", ""},
		{"nothing to rotate", nil, ExitUsage,
			"error: say what to rotate: 'rotate issuer URL', 'rotate issuer --rollback --from FILE' or 'rotate hosted-cluster NAME'; see 'kubectl bound-token rotate --help'", ""},
		{"an argument", []string{"prod"}, ExitUsage,
			`error: unknown command "prod" for "kubectl bound-token rotate"; see 'kubectl bound-token rotate --help' for usage`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := newAPITestFactory(t, "clusters", openShift(), nil)
			out, errOut, code := run(t, cmdRun{cmd: NewCmdRotate, f: tf}, "", append([]string{"rotate"}, tc.args...)...)
			l := lines(errOut)
			if code != tc.wantCode || out != "" || len(l) == 0 || l[0] != tc.notice || tc.wantErr != "" && !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s\nwant first line: %s\nand: %s", code, tc.wantCode, out, errOut, tc.notice, tc.wantErr)
			}
		})
	}
}

// The deprecated form prints what the new one prints, on stdout.
func TestRotateDeprecatedFormPrintsLikeTheNewOne(t *testing.T) {
	tf := newAPITestFactory(t, "default", openShift(), nil)
	oldOut, _, oldCode := run(t, cmdRun{cmd: NewCmdRotate, f: tf}, "", "rotate", "--issuer", "https://new.example.com", "--dry-run=client", "-o", "json")
	newOut, _, newCode := run(t, cmdRun{cmd: NewCmdRotate, f: tf}, "", "rotate", "issuer", "https://new.example.com", "--dry-run=client", "-o", "json")
	if oldCode != 0 || newCode != 0 || oldOut == "" {
		t.Fatalf("exit %d and %d", oldCode, newCode)
	}
	if diff := cmp.Diff(newOut, oldOut); diff != "" {
		t.Errorf("rotate --issuer -o json (-new +old):\n%s", diff)
	}
}

func TestRotateCompletesFlags(t *testing.T) {
	out, _, _ := run(t, cmdRun{}, "", "__complete", "rotate", "issuer", "x", "--restart", "")
	for _, m := range []string{"none", "workloads", "pods"} {
		if !strings.Contains(out, m+"\n") {
			t.Errorf("completion lacks %s:\n%s", m, out)
		}
	}
	out, _, _ = run(t, cmdRun{}, "", "__complete", "rotate", "hosted-cluster", "prod", "--generate", "")
	// HyperShift reads only RSA keys: ec256 is not offered.
	if !strings.Contains(out, "rsa2048\n") || strings.Contains(out, "ec256") {
		t.Errorf("--generate completion:\n%s", out)
	}
	out, _, _ = run(t, cmdRun{}, "", "__complete", "rotate", "")
	if !strings.Contains(out, "issuer\t") || !strings.Contains(out, "hosted-cluster\t") {
		t.Errorf("rotate completion:\n%s", out)
	}
}
