// Package legacy finds long-lived ServiceAccount token Secrets, judges who
// still uses them the way the platform does, and invalidates or deletes
// only what its own verdict says nobody uses, after a verified backup;
// restore brings them back from that backup.
//
// It must not import pkg/switcher, pkg/restart, pkg/guard, pkg/doctor,
// pkg/fleet or pkg/cmd: the commands that act on what it judges build on
// it, not the other way round.
package legacy

import (
	"fmt"
	"strings"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const (
	// LabelLastUsed is set by the apiserver (1.28+) on the day a legacy token
	// authenticates (k8s.io/kubernetes pkg/serviceaccount/legacy.go,
	// LastUsedLabelKey; written at most once a day per Secret).
	LabelLastUsed = "kubernetes.io/legacy-token-last-used"
	// LabelInvalidSince makes the apiserver (1.29+) reject the token; removing
	// it re-enables the token (pkg/serviceaccount/legacy.go,
	// InvalidSinceLabelKey).
	LabelInvalidSince = "kubernetes.io/legacy-token-invalid-since"

	dateLayout = "2006-01-02"
)

// Verdicts: one judgement, shared by the audit and by apply.
const (
	// VerdictInvalidate: valid, read by nothing, unused for the threshold.
	VerdictInvalidate = "invalidate"
	// VerdictDelete: invalid for the threshold, no use recorded since.
	VerdictDelete = "delete"
	// VerdictUsed: a use within the threshold (label or audit log).
	VerdictUsed = "used"
	// VerdictUnknown: the evidence cannot say (use not tracked long
	// enough, no tracking, malformed labels, readers that could not be
	// listed).
	VerdictUnknown = "unknown"
	// VerdictSwitchWorkload: read by a pod or a workload's pod template.
	VerdictSwitchWorkload = "switch-workload"
	// VerdictInUseFailing: invalid, and a client still presents it.
	VerdictInUseFailing = "in-use-failing"
	// VerdictWait: invalid, but not yet for the threshold.
	VerdictWait = "wait"
	// VerdictRestoredOnUse: this tool invalidated it, a client presented
	// it, and a guard restored it (AnnotationRestoredOnUse): find that
	// client before invalidating it again.
	VerdictRestoredOnUse = "restored-on-use"
)

// ServiceAccount states.
const (
	SAOK          = "ok"
	SAMissing     = "missing"
	SAUIDMismatch = "uid-mismatch"
)

// Reader is a pod or a workload whose pod spec names the Secret.
type Reader struct {
	// Kind is the resource as kubectl names it: pod, deployment,
	// statefulset, daemonset, replicaset, replicationcontroller, job,
	// cronjob.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Via is how the spec names the Secret: volume, projected, env,
	// envFrom, imagePullSecrets, or the volume plugin (csi, cephfs, rbd,
	// iscsi, flexVolume, azureFile, cinder, scaleIO, storageos).
	Via string `json:"via"`
	// Owner is the top controller of a pod or ReplicaSet or Job, as
	// kind/name.
	Owner string `json:"owner,omitempty"`
	// Phase of a pod; finished pods count, as they do for the cleaner.
	Phase string `json:"phase,omitempty"`
	// History marks a Deployment's old ReplicaSet at 0 replicas: it does
	// not read the Secret now, but `kubectl rollout undo` would bring it
	// back. It does not block a change.
	History bool `json:"history,omitempty"`

	// controller is the pod's direct controller (kind/name), to fold pods
	// into the workload that is already listed.
	controller string
}

// String names the reader the one way used everywhere:
// deployment/web (volume), pod/lone (env).
func (r Reader) String() string {
	s := r.Kind + "/" + r.Name + " (" + r.Via
	if r.History {
		s += ", rollout history"
	}
	return s + ")"
}

// Forecast is when kube-controller-manager's legacy token cleaner will act
// on the Secret, if it runs, or why it never will.
type Forecast struct {
	// Invalidate and Delete are days (YYYY-MM-DD, ±1 day: the cleaner runs
	// every 24 h from kube-controller-manager's start).
	Invalidate string `json:"invalidate,omitempty"`
	Delete     string `json:"delete,omitempty"`
	// Never says why the cleaner will not act.
	Never string `json:"never,omitempty"`
	// Warning: the cleaner will act although a workload reads the Secret
	// (it looks at pods only).
	Warning string `json:"warning,omitempty"`
}

// SeenUse is evidence of use found outside the Secret (an audit log).
type SeenUse struct {
	Requests   int       `json:"requests"`
	Rejected   int       `json:"rejected,omitempty"`
	FirstSeen  time.Time `json:"firstSeen"`
	LastSeen   time.Time `json:"lastSeen"`
	UserAgents []string  `json:"userAgents,omitempty"`
	SourceIPs  []string  `json:"sourceIPs,omitempty"`
	Verbs      []string  `json:"verbs,omitempty"`
	Resources  []string  `json:"resources,omitempty"`
}

// Finding is one legacy token Secret as the audit sees it.
type Finding struct {
	Namespace           string      `json:"namespace"`
	Name                string      `json:"name"`
	UID                 string      `json:"uid"`
	ServiceAccount      string      `json:"serviceAccount"`
	ServiceAccountState string      `json:"serviceAccountState"`
	AutoGenerated       bool        `json:"autoGenerated"`
	LastUsed            string      `json:"lastUsed,omitempty"`
	InvalidSince        string      `json:"invalidSince,omitempty"`
	Created             metav1.Time `json:"created"`
	// Marks is what this tool's invalidation (and a guard's restore)
	// wrote on the Secret (marks.go); nil when there is none.
	Marks    *Marks   `json:"marks,omitempty"`
	Readers  []Reader `json:"readers,omitempty"`
	AuditLog *SeenUse `json:"auditLog,omitempty"`
	// Verdict is the judgement; Use is the judgement of use alone,
	// readers aside, which apply needs when the user names readers as
	// acceptable (--include-mounted).
	Verdict string   `json:"verdict"`
	Use     string   `json:"use"`
	Reason  string   `json:"reason"`
	Cleaner Forecast `json:"cleaner"`

	// Secret is the listed object, kept for apply; never printed.
	Secret *corev1.Secret `json:"-"`
	// readersUnknown says why the readers of this Secret could not all be
	// listed.
	readersUnknown string
	// useWhy is the reason of Use.
	useWhy string
	// guardedUntil is the guard day (LabelGuardUntil) when it is not yet
	// past by the day of the judgement (the server's, ScanOptions.Now):
	// a guard may still restore the Secret, so it must not be deleted.
	guardedUntil string

	// seq is the order in which an apply's scan found it.
	seq int
}

// Marks are this tool's labels and annotations on a Secret (marks.go), as
// the audit prints them.
type Marks struct {
	InvalidatedOn   string `json:"invalidatedOn,omitempty"`
	InvalidatedFor  string `json:"invalidatedFor,omitempty"`
	LastUsedBefore  string `json:"lastUsedBefore,omitempty"`
	LastUsedCleared bool   `json:"lastUsedCleared,omitempty"`
	GuardUntil      string `json:"guardUntil,omitempty"`
	RestoredOnUse   string `json:"restoredOnUse,omitempty"`
	RestoredBy      string `json:"restoredBy,omitempty"`
}

// readMarks reads this tool's marks off a Secret's metadata; nil when it
// carries none.
func readMarks(labels, ann map[string]string) *Marks {
	m := &Marks{
		InvalidatedOn:   ann[AnnotationInvalidatedOn],
		InvalidatedFor:  ann[AnnotationInvalidatedFor],
		LastUsedBefore:  ann[AnnotationLastUsedBefore],
		LastUsedCleared: ann[AnnotationLastUsedCleared] == "true",
		GuardUntil:      labels[LabelGuardUntil],
		RestoredOnUse:   ann[AnnotationRestoredOnUse],
		RestoredBy:      ann[AnnotationRestoredBy],
	}
	if *m == (Marks{}) {
		return nil
	}
	return m
}

// ours reports whether the invalid-since label in place is this tool's:
// our marks say we set it that very day, and no guard restored the Secret
// since (a guard leaves the marks as a record and adds
// AnnotationRestoredOnUse, so an invalid-since label on top of them was
// put back by someone else; an invalidation by this tool writes fresh
// marks without it).
func (f *Finding) ours() bool {
	m := f.Marks
	return f.InvalidSince != "" && m != nil && m.InvalidatedOn == f.InvalidSince && m.RestoredOnUse == ""
}

// Key is NAMESPACE/NAME.
func (f *Finding) Key() string { return f.Namespace + "/" + f.Name }

// Read reports whether a pod or a workload reads the Secret now (rollout
// history aside).
func (f *Finding) Read() bool { return len(f.Blocking()) > 0 }

// Blocking lists the readers that read the Secret now.
func (f *Finding) Blocking() []Reader {
	var out []Reader
	for _, r := range f.Readers {
		if !r.History {
			out = append(out, r)
		}
	}
	return out
}

// newFinding reads what the Secret itself says; SA state, readers and the
// verdict come later.
func newFinding(s *corev1.Secret) *Finding {
	return &Finding{
		Namespace:      s.Namespace,
		Name:           s.Name,
		UID:            string(s.UID),
		ServiceAccount: s.Annotations[corev1.ServiceAccountNameKey],
		LastUsed:       s.Labels[LabelLastUsed],
		InvalidSince:   s.Labels[LabelInvalidSince],
		Marks:          readMarks(s.Labels, s.Annotations),
		Created:        s.CreationTimestamp,
		Secret:         s,
	}
}

// Summary counts findings by verdict and says what the judgement rests on.
type Summary struct {
	Total    int            `json:"total"`
	Read     int            `json:"read"`
	Invalid  int            `json:"alreadyInvalid"`
	Verdicts map[string]int `json:"verdicts"`
	Info     *ScanInfo      `json:"basis,omitempty"`
}

// Add counts f.
func (s *Summary) Add(f *Finding) {
	if s.Verdicts == nil {
		s.Verdicts = map[string]int{}
	}
	s.Total++
	if f.Read() {
		s.Read++
	}
	if f.InvalidSince != "" {
		s.Invalid++
	}
	s.Verdicts[f.Verdict]++
}

// Report is the audit as printed by -o json|yaml.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	Items           []*Finding `json:"items"`
	Summary         Summary    `json:"summary"`
}

// NewReport returns an empty report with its kind set.
func NewReport() *Report {
	return &Report{TypeMeta: metav1.TypeMeta{APIVersion: kubeapi.OutputGroupVersion.String(), Kind: "LegacyTokenAudit"},
		Summary: Summary{Verdicts: map[string]int{}}}
}

// DeepCopyObject makes Report a runtime.Object for cli-runtime's printers.
func (r *Report) DeepCopyObject() runtime.Object {
	c := *r
	c.Items = make([]*Finding, len(r.Items))
	for i, f := range r.Items {
		fc := *f
		fc.Readers = append([]Reader(nil), f.Readers...)
		if f.Marks != nil {
			m := *f.Marks
			fc.Marks = &m
		}
		if f.AuditLog != nil {
			a := *f.AuditLog
			fc.AuditLog = &a
		}
		c.Items[i] = &fc
	}
	c.Summary.Verdicts = map[string]int{}
	for k, v := range r.Summary.Verdicts {
		c.Summary.Verdicts[k] = v
	}
	return &c
}

// ParseAge reads a duration that also accepts days ("90d", "1d12h").
func ParseAge(s string) (time.Duration, error) {
	orig := s
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		var days int
		if _, err := fmt.Sscanf(s[:i], "%d", &days); err != nil || fmt.Sprint(days) != s[:i] || days < 0 {
			return 0, fmt.Errorf("invalid duration %q: use forms like 90d, 36h or 1d12h", orig)
		}
		total = time.Duration(days) * 24 * time.Hour
		s = s[i+1:]
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("invalid duration %q: use forms like 90d, 36h or 1d12h", orig)
		}
		total += d
	}
	return total, nil
}
