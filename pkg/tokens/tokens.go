// Package tokens mints bound ServiceAccount tokens through the TokenRequest
// API, one or many at a time, and turns server errors into advice.
//
// It must not import any other package of this module except
// pkg/internal/text and pkg/retry.
package tokens

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// Retry is the policy for every API call here. All of them are safe to
// repeat: GETs and LISTs, and TokenRequest, which stores nothing (a repeat
// after a lost answer mints a token nobody receives; it expires unused).
var Retry = retry.Default

// MinDuration and MaxDuration are the bounds kube-apiserver enforces on
// spec.expirationSeconds; checking them here saves a round trip and gives a
// better message than the server's.
const (
	MinDuration = 10 * time.Minute
	MaxDuration = time.Duration(math.MaxUint32) * time.Second
)

// BoundObjectKinds are the kinds TokenRequest can bind to, all in core/v1.
var BoundObjectKinds = []string{"Node", "Pod", "Secret"}

// Target names one ServiceAccount.
type Target struct {
	Namespace string
	Name      string
}

func (t Target) String() string { return t.Namespace + "/" + t.Name }

// BoundObject ties a token's life to an object; UID is looked up when empty.
type BoundObject struct {
	Kind string
	Name string
	UID  string
}

// Request is what every minted token asks for.
type Request struct {
	Audiences   []string
	Duration    time.Duration // 0: the server's default (1h unless capped)
	BoundObject *BoundObject
}

// InvalidError names the part of a token request that the server would
// refuse; the command layer words it with the flag that gave it.
type InvalidError struct {
	Field  string // one of the Field constants
	Reason string
}

// The parts of a request an InvalidError can name.
const (
	FieldDuration  = "duration"
	FieldBoundKind = "bound object kind"
	FieldBoundName = "bound object name"
)

func (e *InvalidError) Error() string { return e.Field + " " + e.Reason }

// ValidateDuration applies the server's rules before any request is sent.
func ValidateDuration(d time.Duration) error {
	reason := ""
	switch {
	case d == 0:
		return nil
	case d < 0:
		reason = fmt.Sprintf("%s is negative; use a value of at least 10m", d)
	case d%time.Second != 0:
		reason = fmt.Sprintf("%s is not a whole number of seconds", d)
	case d < MinDuration:
		reason = fmt.Sprintf("%s is shorter than the 10m minimum that kube-apiserver accepts", d)
	case d > MaxDuration:
		reason = fmt.Sprintf("%s is longer than the 2^32 s maximum that kube-apiserver accepts", d)
	default:
		return nil
	}
	return &InvalidError{Field: FieldDuration, Reason: reason}
}

// ValidateBoundObject checks that b names one object of a kind a token
// can be bound to, not the object itself.
func ValidateBoundObject(b *BoundObject) error {
	if b == nil {
		return nil
	}
	if b.Kind == "" {
		if b.Name != "" || b.UID != "" {
			return &InvalidError{Field: FieldBoundKind, Reason: "is needed to bind to a name or uid (one of " + strings.Join(BoundObjectKinds, ", ") + ")"}
		}
		return nil
	}
	ok := false
	for _, k := range BoundObjectKinds {
		if k == b.Kind {
			ok = true
		}
	}
	if !ok {
		return &InvalidError{Field: FieldBoundKind, Reason: fmt.Sprintf("%q is not supported; use one of %s", b.Kind, strings.Join(BoundObjectKinds, ", "))}
	}
	if b.Name == "" {
		return &InvalidError{Field: FieldBoundName, Reason: "is needed to bind to a " + b.Kind}
	}
	return nil
}

// ResolveBoundObject returns a copy of b with its UID filled in from the
// cluster, so the token is bound to this instance of the object and not to a
// later one with the same name. It also catches a Pod that runs as another
// ServiceAccount before the TokenRequest does, with a clearer message.
func ResolveBoundObject(ctx context.Context, client kubernetes.Interface, t Target, b *BoundObject) (*BoundObject, error) {
	if b == nil || b.Kind == "" {
		return nil, nil
	}
	out := *b
	var (
		uid types.UID
		err error
	)
	switch b.Kind {
	case "Pod":
		pod, gerr := retry.Value(ctx, Retry, func(ctx context.Context) (*corev1.Pod, error) {
			return client.CoreV1().Pods(t.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
		})
		if gerr == nil {
			sa := pod.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			if sa != t.Name {
				return nil, fmt.Errorf("pod %s/%s runs as serviceaccount %q, not %q: a token can only be bound to a pod of its own serviceaccount", t.Namespace, b.Name, sa, t.Name)
			}
			uid = pod.UID
		}
		err = explainLookup(gerr, "pod", t.Namespace, b.Name)
	case "Secret":
		s, gerr := retry.Value(ctx, Retry, func(ctx context.Context) (*corev1.Secret, error) {
			return client.CoreV1().Secrets(t.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
		})
		if gerr == nil {
			uid = s.UID
		}
		err = explainLookup(gerr, "secret", t.Namespace, b.Name)
	case "Node":
		n, gerr := retry.Value(ctx, Retry, func(ctx context.Context) (*corev1.Node, error) {
			return client.CoreV1().Nodes().Get(ctx, b.Name, metav1.GetOptions{})
		})
		if gerr == nil {
			uid = n.UID
		}
		err = explainLookup(gerr, "node", "", b.Name)
	default:
		return nil, ValidateBoundObject(b)
	}
	if err != nil {
		return nil, err
	}
	if out.UID != "" && out.UID != string(uid) {
		return nil, problem(ErrBoundObjectRecreated, "%s %q has uid %s, not %s: it was deleted and re-created", strings.ToLower(b.Kind), b.Name, uid, out.UID)
	}
	out.UID = string(uid)
	return &out, nil
}

// The problems a caller may want to advise on in its own terms (a CLI
// names its flags): errors.Is(err, ErrBoundObjectNotFound) and so on. The
// error's text names the problem only.
var (
	// ErrBoundObjectRecreated: the bound object's uid is not the one asked
	// for; binding to the current object needs no uid.
	ErrBoundObjectRecreated = errors.New("bound object re-created")
	// ErrBoundObjectNotFound: no object of that kind and name.
	ErrBoundObjectNotFound = errors.New("bound object not found")
	// ErrBoundObjectForbidden: the caller may not read the bound object to
	// learn its uid; giving the uid avoids the read.
	ErrBoundObjectForbidden = errors.New("bound object lookup forbidden")
	// ErrDurationRejected: kube-apiserver refused the token lifetime.
	ErrDurationRejected = errors.New("token duration rejected")
)

// problemError is an error whose text is its own and which errors.Is
// matches to one of the problems above.
type problemError struct {
	kind error
	msg  string
}

func (e *problemError) Error() string        { return e.msg }
func (e *problemError) Is(target error) bool { return target == e.kind }

func problem(kind error, format string, a ...any) error {
	return &problemError{kind: kind, msg: fmt.Sprintf(format, a...)}
}

func explainLookup(err error, kind, ns, name string) error {
	if err == nil {
		return nil
	}
	where := ""
	if ns != "" {
		where = fmt.Sprintf(" in namespace %q", ns)
	}
	switch {
	case apierrors.IsNotFound(err):
		return problem(ErrBoundObjectNotFound, "%s %q not found%s", kind, name, where)
	case apierrors.IsForbidden(err):
		return problem(ErrBoundObjectForbidden, "not allowed to get %ss%s to look up the uid of %q (RBAC verb \"get\" on resource %q)", kind, where, name, kind+"s")
	}
	return fmt.Errorf("look up %s %q%s: %w", kind, name, where, err)
}

// Mint requests one token. The result carries TypeMeta so printers show it.
func Mint(ctx context.Context, client kubernetes.Interface, t Target, req Request) (*authenticationv1.TokenRequest, error) {
	tr := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: req.Audiences},
	}
	if req.Duration > 0 {
		secs := int64(req.Duration / time.Second)
		tr.Spec.ExpirationSeconds = &secs
	}
	if b := req.BoundObject; b != nil && b.Kind != "" {
		tr.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{
			Kind: b.Kind, APIVersion: "v1", Name: b.Name, UID: types.UID(b.UID),
		}
	}
	resp, err := retry.Value(ctx, Retry, func(ctx context.Context) (*authenticationv1.TokenRequest, error) {
		return client.CoreV1().ServiceAccounts(t.Namespace).CreateToken(ctx, t.Name, tr, metav1.CreateOptions{})
	})
	if err != nil {
		return nil, Explain(err, t, req)
	}
	if resp.Status.Token == "" {
		return nil, fmt.Errorf("serviceaccount %s: the server answered without a token", t)
	}
	resp.APIVersion = authenticationv1.SchemeGroupVersion.String()
	resp.Kind = "TokenRequest"
	if resp.Name == "" {
		resp.Name, resp.Namespace = t.Name, t.Namespace
	}
	return resp, nil
}

// Explain turns a TokenRequest error into one line that says what to do.
// The server's own text is kept at the end because it names the user.
func Explain(err error, t Target, req Request) error {
	msg := err.Error()
	switch {
	case apierrors.IsNotFound(err):
		if d := statusDetails(err); d != nil && d.Kind != "" && d.Kind != "serviceaccounts" {
			return fmt.Errorf("serviceaccount %s: bound %s %q not found", t, strings.TrimSuffix(d.Kind, "s"), d.Name)
		}
		return fmt.Errorf("serviceaccount %q not found in namespace %q; list them with: %s get serviceaccounts -n %s", t.Name, t.Namespace, text.Kubectl(), t.Namespace)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("serviceaccount %s: forbidden: you need RBAC verb \"create\" on resource \"serviceaccounts/token\" in namespace %q (server said: %s)", t, t.Namespace, msg)
	case strings.Contains(msg, "ServiceAccountTokenNodeBinding"):
		return fmt.Errorf("serviceaccount %s: this cluster cannot bind tokens to Nodes: kube-apiserver runs with feature gate ServiceAccountTokenNodeBinding disabled (on by default from Kubernetes 1.31, OpenShift 4.19); enable it or bind to a Pod or Secret", t)
	case strings.Contains(msg, "different serviceaccount name"):
		name := ""
		if req.BoundObject != nil {
			name = req.BoundObject.Name
		}
		return fmt.Errorf("serviceaccount %s: pod %q runs as another serviceaccount; bind the token to a pod of %q or create it for the pod's serviceaccount", t, name, t.Name)
	case apierrors.IsInvalid(err) && strings.Contains(msg, "expirationSeconds"):
		return problem(ErrDurationRejected, "serviceaccount %s: the server rejected the duration %s: %s", t, req.Duration, msg)
	case apierrors.IsConflict(err):
		return problem(ErrBoundObjectRecreated, "serviceaccount %s: uid mismatch, the bound object was deleted and re-created (server said: %s)", t, msg)
	}
	return fmt.Errorf("serviceaccount %s: %w", t, err)
}

func statusDetails(err error) *metav1.StatusDetails {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Details
	}
	return nil
}

// ListTargets resolves ServiceAccounts by label selector, in one namespace or
// all ("" namespace), sorted for stable output.
func ListTargets(ctx context.Context, client kubernetes.Interface, namespace, selector string) ([]Target, error) {
	list, err := retry.Value(ctx, Retry, func(ctx context.Context) (*corev1.ServiceAccountList, error) {
		return client.CoreV1().ServiceAccounts(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("not allowed to list serviceaccounts (RBAC verb \"list\" on \"serviceaccounts\"): %w", err)
		}
		return nil, fmt.Errorf("list serviceaccounts: %w", err)
	}
	out := make([]Target, 0, len(list.Items))
	for _, sa := range list.Items {
		out = append(out, Target{Namespace: sa.Namespace, Name: sa.Name})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Result is one target's outcome in a batch.
type Result struct {
	Target       Target
	TokenRequest *authenticationv1.TokenRequest
	Err          error
}

// MintAll mints for every target with at most workers requests in flight and
// returns results in target order. Bound objects are resolved once per
// namespace. done, when set, is called after each target finishes.
func MintAll(ctx context.Context, client kubernetes.Interface, targets []Target, req Request, workers int, done func(Result)) []Result {
	if workers < 1 {
		workers = 1
	}
	results := make([]Result, len(targets))
	bound := newBoundCache(client, req.BoundObject)
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < workers && w < len(targets); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t := targets[i]
				r := Result{Target: t}
				b, err := bound.get(ctx, t)
				if err == nil {
					one := req
					one.BoundObject = b
					r.TokenRequest, r.Err = Mint(ctx, client, t, one)
				} else {
					r.Err = fmt.Errorf("serviceaccount %s: %w", t, err)
				}
				results[i] = r
				if done != nil {
					mu.Lock()
					done(r)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range targets {
		select {
		case jobs <- i:
		case <-ctx.Done():
			for j := i; j < len(targets); j++ {
				results[j] = Result{Target: targets[j], Err: ctx.Err()}
			}
			close(jobs)
			wg.Wait()
			return results
		}
	}
	close(jobs)
	wg.Wait()
	return results
}

// boundCache looks a bound object up once per namespace (Node: once), not
// once per token. A Pod is checked against each target's ServiceAccount.
type boundCache struct {
	client kubernetes.Interface
	b      *BoundObject
	mu     sync.Mutex
	byNS   map[string]*boundEntry
}

type boundEntry struct {
	once sync.Once
	obj  *BoundObject
	err  error
}

func newBoundCache(client kubernetes.Interface, b *BoundObject) *boundCache {
	return &boundCache{client: client, b: b, byNS: map[string]*boundEntry{}}
}

func (c *boundCache) get(ctx context.Context, t Target) (*BoundObject, error) {
	if c.b == nil || c.b.Kind == "" {
		return nil, nil
	}
	if c.b.Kind == "Pod" {
		// The pod's serviceaccount must match each target: no sharing.
		return ResolveBoundObject(ctx, c.client, t, c.b)
	}
	key := t.Namespace
	if c.b.Kind == "Node" {
		key = ""
	}
	c.mu.Lock()
	e, ok := c.byNS[key]
	if !ok {
		e = &boundEntry{}
		c.byNS[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.obj, e.err = ResolveBoundObject(ctx, c.client, t, c.b) })
	return e.obj, e.err
}
