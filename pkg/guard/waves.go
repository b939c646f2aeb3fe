package guard

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// InvalidUsesMetric is kube-apiserver's counter of requests refused
// because the legacy token Secret carries the invalid-since label
// (k8s.io/kubernetes@v1.37.2 pkg/serviceaccount/metrics.go,
// invalidatedAutoTokensTotal; incremented in pkg/serviceaccount/legacy.go,
// legacyValidator.Validate, for every invalid Secret, auto-generated or
// manual, despite its name). It has no label naming the Secret, and each
// kube-apiserver instance counts its own requests.
const InvalidUsesMetric = "serviceaccount_invalid_legacy_auto_token_uses_total"

// What a wave's watch found.
const (
	WaveQuiet = "quiet"
	// WaveRestored: a guard restored a Secret of the run (a client
	// presented its token).
	WaveRestored = "restored"
	// WavePresented: a client presented a Secret of the run and was
	// refused; no guard restored it (yet).
	WavePresented = "presented"
	// WaveUnknownClient: the invalid-token counter rose with no sign on
	// any Secret of the run.
	WaveUnknownClient = "unknown-rejected-client"
	// WaveFailed: a Secret of the wave failed or changed since its
	// backup; the run stops before watching.
	WaveFailed = "failed"
)

// Waves invalidates in waves, like a canary: each wave changes a few
// Secrets (Apply, with legacy.ApplyOptions.Limit), then watches them for a
// while; the run goes on only if no client showed up.
type Waves struct {
	// Watch is how long each wave is watched.
	Watch time.Duration
	// Poll is how often the run's Secrets are read during the watch
	// (default 1 s: a guard's restore or kube-apiserver's last-used patch
	// shows within that).
	Poll time.Duration
	// Apply runs one wave: legacy.Apply with the wave's size as Limit,
	// into the run's backup. It is called again for each wave, so each
	// wave is judged on the cluster as it is then.
	Apply func(ctx context.Context) (*legacy.ApplyResult, error)
	// Metadata reads the run's Secrets, for their metadata only.
	Metadata metadata.Interface
	// Uses reads InvalidUsesMetric from kube-apiserver's /metrics; nil
	// when it is not to be read. An error means the counter cannot be
	// read: the waves go on, watching the Secrets only.
	Uses func(ctx context.Context) (float64, error)
	// OnWave is called when a wave starts its watch and when it ends;
	// OnNote with remarks (the counter unreadable). Calls never overlap.
	OnWave func(Wave, bool)
	OnNote func(string)
}

// Wave is one wave of a run.
type Wave struct {
	Number int `json:"wave"`
	// Secrets are those the wave invalidated (NAMESPACE/NAME).
	Secrets []string `json:"secrets"`
	// Result is WaveQuiet, WaveRestored, WavePresented, WaveUnknownClient
	// or WaveFailed; empty while the wave is watched.
	Result string `json:"result,omitempty"`
	// Presented are the Secrets of the run (this wave's or an earlier
	// one's) a client presented during the watch.
	Presented []Presented `json:"presented,omitempty"`
	// UsesBefore and UsesAfter are InvalidUsesMetric before the wave's
	// changes and after its watch; nil when not read.
	UsesBefore *float64 `json:"invalidUsesBefore,omitempty"`
	UsesAfter  *float64 `json:"invalidUsesAfter,omitempty"`
	Message    string   `json:"message,omitempty"`
}

// Presented is a Secret whose token a client presented after the run
// invalidated it.
type Presented struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Day is the last-used day kube-apiserver wrote on the refused use.
	Day string `json:"day"`
	// RestoredBy names the guard that restored it; empty when none did.
	RestoredBy string `json:"restoredBy,omitempty"`
}

func (p Presented) String() string {
	s := fmt.Sprintf("%s/%s (presented on %s", p.Namespace, p.Name, p.Day)
	if p.RestoredBy != "" {
		s += ", restored by the guard " + p.RestoredBy
	} else {
		s += ", still invalid: its client is refused"
	}
	return s + ")"
}

// WavesResult is what a run of waves did.
type WavesResult struct {
	Waves []Wave
	// Outcomes is one per Secret: its outcome in the last wave that
	// changed or judged it (an earlier wave's invalidated is not replaced
	// by a later wave's already-done), sorted by namespace and name.
	Outcomes []backup.Outcome
	Counts   map[string]int
	Info     *legacy.ScanInfo
	// Stopped says why the run stopped before its last wave; empty when
	// every wave was quiet.
	Stopped string
}

// Run applies and watches wave after wave until a wave invalidates
// nothing more (done), a Secret fails, or a watch sees a client. The
// error is Apply's; a client seen is WavesResult.Stopped, not an error.
func (w *Waves) Run(ctx context.Context) (*WavesResult, error) {
	if w.Watch <= 0 {
		return nil, errors.New("a wave needs a watch longer than zero")
	}
	if w.Poll <= 0 {
		w.Poll = time.Second
	}
	res := &WavesResult{Counts: map[string]int{}}
	merged := map[string]backup.Outcome{}
	var watched []key2 // every Secret this run invalidated
	uses := usesReader{w: w, ok: w.Uses != nil}
	defer func() { res.Outcomes, res.Counts = flatten(merged) }()
	for n := 1; ; n++ {
		wave := Wave{Number: n, UsesBefore: uses.read(ctx)}
		ar, err := w.Apply(ctx)
		if ar != nil {
			res.Info = ar.Info
			var failed bool
			watched, failed = mergeWave(&wave, merged, watched, ar.Outcomes)
			if failed && err == nil {
				wave.Result = WaveFailed
				wave.Message = "a Secret of this wave failed or changed since its backup: the run stops before watching"
				res.Waves = append(res.Waves, wave)
				res.Stopped = wave.Message
				return res, nil
			}
		}
		if err != nil {
			if len(wave.Secrets) > 0 {
				res.Waves = append(res.Waves, wave)
			}
			return res, err
		}
		if len(wave.Secrets) == 0 {
			// Nothing left to invalidate: the run is complete.
			return res, nil
		}
		w.onWave(wave, true)
		wave.Presented, err = w.watch(ctx, watched)
		if err != nil {
			res.Waves = append(res.Waves, wave)
			return res, err
		}
		wave.UsesAfter = uses.read(ctx)
		w.judge(&wave)
		res.Waves = append(res.Waves, wave)
		w.onWave(wave, false)
		if wave.Result != WaveQuiet {
			res.Stopped = wave.Message
			return res, nil
		}
		if ar.Counts[legacy.OutNextWave] == 0 {
			return res, nil
		}
	}
}

// usesReader reads InvalidUsesMetric until a read fails; then it notes why,
// once, and reads no more.
type usesReader struct {
	w  *Waves
	ok bool
}

func (u *usesReader) read(ctx context.Context) *float64 {
	if !u.ok {
		return nil
	}
	v, err := u.w.Uses(ctx)
	if err != nil {
		u.ok = false
		u.w.note(fmt.Sprintf("cannot read %s on kube-apiserver's /metrics (%v): only the Secrets are watched, so a client refused on another invalid token goes unseen", InvalidUsesMetric, err))
		return nil
	}
	return &v
}

// mergeWave records one wave's outcomes in merged (an "already done" does
// not replace what an earlier wave did, unless that was "next wave"), adds
// the Secrets it invalidated to wave.Secrets (sorted) and to watched, and
// reports whether any outcome failed.
func mergeWave(wave *Wave, merged map[string]backup.Outcome, watched []key2, outcomes []backup.Outcome) ([]key2, bool) {
	failed := false
	for _, o := range outcomes {
		k := o.Kind + "/" + o.Namespace + "/" + o.Name
		if prev, ok := merged[k]; !ok || o.Result != legacy.OutAlreadyDone || prev.Result == legacy.OutNextWave {
			merged[k] = o
		}
		switch {
		case o.Result == legacy.OutInvalidated && o.Kind == "":
			wave.Secrets = append(wave.Secrets, o.Namespace+"/"+o.Name)
			watched = append(watched, key2{o.Namespace, o.Name})
		case o.Failed():
			failed = true
		}
	}
	sort.Strings(wave.Secrets)
	return watched, failed
}

// judge sets a watched wave's Result and Message.
func (w *Waves) judge(wave *Wave) {
	if len(wave.Presented) > 0 {
		restored := 0
		for _, p := range wave.Presented {
			if p.RestoredBy != "" {
				restored++
			}
		}
		wave.Result = WavePresented
		if restored > 0 {
			wave.Result = WaveRestored
		}
		wave.Message = fmt.Sprintf("wave %d: a client still presents ", wave.Number)
		for i, p := range wave.Presented {
			if i > 0 {
				wave.Message += ", "
			}
			wave.Message += p.String()
		}
		wave.Message += ". Find it in kube-apiserver's audit log from that day on (user agent and source address; a restored token's next request is accepted and logged) and move it to a bound token; the run stopped, the later waves are left as they were"
		if restored < len(wave.Presented) {
			wave.Message += ". A Secret still invalid stays refused until a guard or a restore from the backup puts it back"
		}
		return
	}
	if b, a := wave.UsesBefore, wave.UsesAfter; b != nil && a != nil && *a > *b {
		wave.Result = WaveUnknownClient
		wave.Message = fmt.Sprintf("wave %d: %s rose from %g to %g during the wave, yet no Secret of this run shows a use: a client was refused on some invalid legacy token (perhaps one invalidated before this run, or one served by another kube-apiserver instance: the counter names no Secret), so which Secret cannot be told; the run stopped. Look for 401 answers to legacy tokens in kube-apiserver's audit log", wave.Number, InvalidUsesMetric, *b, *a)
		return
	}
	wave.Result = WaveQuiet
}

type key2 struct{ ns, name string }

// watch reads the run's Secrets every Poll until Watch has passed or one
// shows a client: a guard's restore (AnnotationRestoredOnUse) or a
// last-used change since the invalidation, as the guards judge it
// (Eligible: restore, or presented past its guard day).
func (w *Waves) watch(ctx context.Context, secrets []key2) ([]Presented, error) {
	deadline := time.NewTimer(w.Watch)
	defer deadline.Stop()
	tick := time.NewTicker(w.Poll)
	defer tick.Stop()
	// One list per namespace and poll, however many Secrets the run
	// watches there: every Secret invalidated for clean-up carries the
	// guard day, and a guard's restore keeps it (RestorePatch, the
	// policy's PatchExpression).
	byNS := map[string]map[string]bool{}
	for _, s := range secrets {
		if byNS[s.ns] == nil {
			byNS[s.ns] = map[string]bool{}
		}
		byNS[s.ns][s.name] = true
	}
	nss := make([]string, 0, len(byNS))
	for ns := range byNS {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for {
		var seen []Presented
		for _, ns := range nss {
			l, err := w.Metadata.Resource(secretsResource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: legacy.LabelGuardUntil, FieldSelector: SecretTypeField})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				w.note(fmt.Sprintf("cannot list the Secrets of namespace %s: %v", ns, err))
				continue
			}
			for i := range l.Items {
				m := &l.Items[i]
				if !byNS[ns][m.Name] {
					continue
				}
				if p, ok := PresentedSince(m); ok {
					seen = append(seen, p)
				}
			}
		}
		if len(seen) > 0 {
			return seen, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, nil
		case <-tick.C:
		}
	}
}

// PresentedSince reports whether a client presented the Secret's token
// after this tool invalidated it: a guard restored it (its
// AnnotationRestoredOnUse, written with the restore, after which the
// Secret is valid and no longer selected by the guards), or the guards'
// rule (Eligible) finds a last-used change since the invalidation, within
// the guard day or past it.
func PresentedSince(m metav1.Object) (Presented, bool) {
	labels, ann := m.GetLabels(), m.GetAnnotations()
	p := Presented{Namespace: m.GetNamespace(), Name: m.GetName(), Day: labels[legacy.LabelLastUsed]}
	if day := ann[legacy.AnnotationRestoredOnUse]; day != "" && labels[legacy.LabelInvalidSince] == "" {
		p.Day, p.RestoredBy = day, ann[legacy.AnnotationRestoredBy]
		if p.RestoredBy == "" {
			p.RestoredBy = "unknown"
		}
		return p, true
	}
	if restore, why := Eligible(m); restore || why == WhyGuardDayPassed {
		return p, true
	}
	return Presented{}, false
}

func (w *Waves) onWave(wave Wave, start bool) {
	if w.OnWave != nil {
		w.OnWave(wave, start)
	}
}

func (w *Waves) note(s string) {
	if w.OnNote != nil {
		w.OnNote(s)
	}
}

func flatten(m map[string]backup.Outcome) ([]backup.Outcome, map[string]int) {
	out := make([]backup.Outcome, 0, len(m))
	counts := map[string]int{}
	for _, o := range m {
		out = append(out, o)
		counts[o.Result]++
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Kind < out[j].Kind
	})
	return out, counts
}

// PolicyInstalled reports whether this tool's admission policy and its
// binding exist (not whether they act: guard status proves that), and
// says what was found. A guard watch running elsewhere cannot be seen.
func PolicyInstalled(ctx context.Context, c *Cluster) (bool, string, error) {
	version, err := ServedVersion(ctx, c.Client.Discovery(), Versions...)
	if err != nil {
		return false, "", err
	}
	if version == "" {
		return false, "this cluster serves no MutatingAdmissionPolicy API the guard can use", nil
	}
	var fe *ForeignError
	pol, err := readOwned(ctx, c.Dynamic.Resource(PolicyResource(version)), "MutatingAdmissionPolicy", PolicyName)
	if errors.As(err, &fe) {
		return false, fe.Error(), nil
	}
	if err != nil {
		return false, "", err
	}
	bind, err := readOwned(ctx, c.Dynamic.Resource(BindingResource(version)), "MutatingAdmissionPolicyBinding", BindingName)
	if errors.As(err, &fe) {
		return false, fe.Error(), nil
	}
	if err != nil {
		return false, "", err
	}
	if pol == nil || bind == nil {
		return false, "the guard's admission policy is not installed", nil
	}
	return true, "the guard's admission policy " + PolicyName + " is installed", nil
}
