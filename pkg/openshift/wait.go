package openshift

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// ErrNotOpenShift: the cluster does not serve the operator's resources.
var ErrNotOpenShift = errors.New("this cluster does not serve kubeapiservers.operator.openshift.io: it is not OpenShift " +
	"(or you may not read it). Elsewhere the issuer is kube-apiserver's --service-account-issuer flag: " +
	"add the new issuer first (all are trusted, the first signs), restart kube-apiserver, and check with `kubectl bound-token doctor`")

var errNoCluster = fmt.Errorf("kubeapiservers.operator.openshift.io/%s not found: the kube-apiserver operator is not installed", ClusterName)

// ErrFailed: the rollout failed (NodeInstallerDegraded).
var ErrFailed = errors.New("kube-apiserver rollout failed")

// Waiter follows kubeapiservers.operator.openshift.io/cluster with a watch
// until a rollout is done or has failed. Watches that the server closes
// (every few minutes, by --min-request-timeout) are resumed from the last
// resourceVersion; an expired resourceVersion (410 Gone) causes a fresh LIST.
type Waiter struct {
	Client dynamic.Interface
	// SinceRevision: the rollout must reach a revision above this one
	// (NoRevision: any finished rollout).
	SinceRevision int32
	// OnProgress is called with each status that changed the summary or
	// the failures.
	OnProgress func(Progress)
	// OnReconnect is called when the watch is resumed or re-listed.
	OnReconnect func(reason string)
	// RetryDelay between failed watch attempts (default 1s).
	RetryDelay time.Duration
}

// Wait returns the final progress. On failure the error wraps ErrFailed; on
// ctx's deadline it wraps context.DeadlineExceeded and the progress is the
// last one seen.
func (w *Waiter) Wait(ctx context.Context) (Progress, error) {
	s := &waitState{
		w:        w,
		res:      w.Client.Resource(KubeAPIServerGVR),
		selector: fields.OneTermEqualSelector("metadata.name", ClusterName).String(),
	}
	rv, done, err := s.get(ctx)
	if done || err != nil {
		return s.last, err
	}
	delay := w.RetryDelay
	if delay == 0 {
		delay = time.Second
	}
	for {
		var stop bool
		wi, err := s.res.Watch(ctx, metav1.ListOptions{
			FieldSelector:       s.selector,
			ResourceVersion:     rv,
			AllowWatchBookmarks: true,
		})
		if err != nil {
			rv, stop, err = s.watchFailed(ctx, rv, err, delay)
		} else {
			rv, stop, err = s.follow(ctx, wi, rv)
		}
		if stop {
			return s.last, err
		}
	}
}

// waitState is one Wait: the object it follows and the last progress seen.
// Its methods return the resourceVersion to watch from next and whether
// waiting is over (with its error, if any).
type waitState struct {
	w        *Waiter
	res      dynamic.NamespaceableResourceInterface
	selector string
	last     Progress
	lastKey  string
}

// handle judges one object; it reports whether waiting is over.
func (s *waitState) handle(obj *unstructured.Unstructured) (bool, error) {
	st, err := StatusOf(obj)
	if err != nil {
		return true, err
	}
	s.last = Evaluate(st, s.w.SinceRevision)
	key := s.last.Summary() + fmt.Sprint(s.last.Failures, s.last.Done)
	if key != s.lastKey && s.w.OnProgress != nil {
		s.w.OnProgress(s.last)
	}
	s.lastKey = key
	switch {
	case s.last.Done:
		return true, nil
	case s.last.Failed:
		return true, ErrFailed
	}
	return false, nil
}

// get reads the object through a LIST: a LIST's resourceVersion is the
// store's current one, while the object's own stays as old as its last
// change, and after a compaction every watch from it would get 410 again.
func (s *waitState) get(ctx context.Context) (string, bool, error) {
	list, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*unstructured.UnstructuredList, error) {
		return s.res.List(ctx, metav1.ListOptions{FieldSelector: s.selector})
	})
	if err != nil {
		return "", true, classify(err)
	}
	for i := range list.Items {
		if list.Items[i].GetName() == ClusterName {
			done, err := s.handle(&list.Items[i])
			return list.GetResourceVersion(), done, err
		}
	}
	return "", true, errNoCluster
}

// relist reads the object again after its resourceVersion expired.
func (s *waitState) relist(ctx context.Context) (string, bool, error) {
	s.w.reconnect("resourceVersion expired; reading the object again")
	rv, done, err := s.get(ctx)
	return rv, done || err != nil, err
}

// watchFailed decides what follows a watch that could not be started:
// re-list on 410, stop when the resource is not served or not readable,
// otherwise retry from rv after delay.
func (s *waitState) watchFailed(ctx context.Context, rv string, err error, delay time.Duration) (string, bool, error) {
	if ctx.Err() != nil {
		return rv, true, ctx.Err()
	}
	if isGone(err) {
		return s.relist(ctx)
	}
	if e := classify(err); errors.Is(e, ErrNotOpenShift) || apierrors.IsForbidden(err) {
		return rv, true, e
	}
	s.w.reconnect("watch failed: " + text.OneLine(err.Error(), 0))
	if !kubeapi.Sleep(ctx, delay) {
		return rv, true, ctx.Err()
	}
	return rv, false, nil
}

// follow drains one watch and decides where the next one resumes.
func (s *waitState) follow(ctx context.Context, wi watch.Interface, rv string) (string, bool, error) {
	newRV, done, err := s.w.drain(ctx, wi, rv, s.handle)
	wi.Stop()
	if done || err != nil {
		return rv, true, err
	}
	if ctx.Err() != nil {
		return rv, true, ctx.Err()
	}
	if newRV == "" {
		return s.relist(ctx)
	}
	s.w.reconnect("watch closed by the server; resuming at resourceVersion " + newRV)
	return newRV, false, nil
}

// drain reads one watch until it ends. It returns the resourceVersion to
// resume from, or "" when that resourceVersion has expired.
func (w *Waiter) drain(ctx context.Context, wi watch.Interface, rv string, handle func(*unstructured.Unstructured) (bool, error)) (string, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return rv, false, ctx.Err()
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return rv, false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				obj, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				rv = obj.GetResourceVersion()
				if done, err := handle(obj); done || err != nil {
					return rv, done, err
				}
			case watch.Bookmark:
				if obj, ok := ev.Object.(*unstructured.Unstructured); ok {
					rv = obj.GetResourceVersion()
				}
			case watch.Deleted:
				return rv, true, fmt.Errorf("kubeapiservers.operator.openshift.io/%s was deleted while waiting", ClusterName)
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if isGone(err) {
					return "", false, nil
				}
				// Other watch errors end this watch; the caller resumes.
				return rv, false, nil
			}
		}
	}
}

func (w *Waiter) reconnect(reason string) {
	if w.OnReconnect != nil {
		w.OnReconnect(reason)
	}
}

func isGone(err error) bool {
	return apierrors.IsGone(err) || apierrors.IsResourceExpired(err) ||
		(apierrors.ReasonForError(err) == metav1.StatusReasonExpired) ||
		func() bool {
			var s apierrors.APIStatus
			return errors.As(err, &s) && s.Status().Code == http.StatusGone
		}()
}

// classify turns "resource not served" into ErrNotOpenShift; a missing
// object named cluster is reported as such.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var s apierrors.APIStatus
	if apierrors.IsNotFound(err) && errors.As(err, &s) {
		if d := s.Status().Details; d == nil || d.Name == "" {
			return ErrNotOpenShift
		}
		return errNoCluster
	}
	return err
}
