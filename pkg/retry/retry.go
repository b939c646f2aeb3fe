// Package retry repeats Kubernetes API calls that failed for a transient
// reason, with bounded, jittered backoff that honours the server's
// Retry-After and the caller's context.
//
// What client-go already does (rest.Request, v0.34): it retries ANY verb up
// to 10 times when the answer is 429 or 5xx WITH a Retry-After header, and
// retries GETs (only) after a connection reset or EOF. It does not retry a
// 5xx without Retry-After (a plain 500 or 503, a 502/504 from a load
// balancer), and never retries a POST/PUT/PATCH/DELETE after a connection
// reset, because the server may have processed it. Do fills those gaps for
// calls that are safe to repeat.
//
// Safe to pass to Do:
//   - reads: GET, LIST (and re-establishing a WATCH);
//   - TokenRequest and TokenReview: they store nothing, so a repeat after a
//     lost answer only mints a token nobody ever receives, which expires on
//     its own;
//   - writes guarded by a precondition (metadata.resourceVersion on update,
//     DeleteOptions.Preconditions): a repeat of a write that did go through
//     fails with 409 Conflict instead of applying twice; the caller must
//     then re-read and decide, not treat 409 as failure blindly;
//   - creates of a fixed name: a repeat of one that went through fails with
//     409 AlreadyExists; the caller must check the existing object is its own.
//
// Not safe: writes without a precondition whose repeat changes the outcome
// (generateName creates, JSON patches that append). Do not wrap those.
//
// It must not import any other package of this module.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Policy bounds the retries of one call.
type Policy struct {
	Attempts int           // total tries, the first included
	Initial  time.Duration // first backoff; doubles each time
	Max      time.Duration // cap on one wait, Retry-After included
}

// Default gives a call about 6 s of retries (0.2+0.4+0.8+1.6 s plus jitter,
// or the server's Retry-After), on top of client-go's own retries.
var Default = Policy{Attempts: 5, Initial: 200 * time.Millisecond, Max: 5 * time.Second}

// Transient reports whether err says the request was not (or may not have
// been) served for a reason that can pass: throttling, an overloaded or
// restarting apiserver, a proxy between, or a cut connection.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		switch st.Status().Code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		// The apiserver's own timeout (504 reason Timeout) and "try again
		// later" answers.
		return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err)
	}
	if utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsHTTP2ConnectionLost(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Do calls fn until it succeeds, fails for good (not Transient), the policy
// runs out or ctx ends. It returns how many times fn ran and fn's last error;
// when it gave up on a transient error, the error says after how many tries,
// and still matches apierrors.IsXxx through errors.As.
func Do(ctx context.Context, p Policy, fn func(context.Context) error) (int, error) {
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !Transient(err) {
			return attempt, err
		}
		if attempt >= p.Attempts {
			if attempt == 1 {
				return attempt, err
			}
			return attempt, &GaveUpError{Attempts: attempt, Err: err}
		}
		t := time.NewTimer(p.wait(attempt, err))
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, fmt.Errorf("%w (stopped retrying: %v)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// GaveUpError is a transient error that outlived the retries.
type GaveUpError struct {
	Attempts int
	Err      error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("%v (gave up after %d attempts)", e.Err, e.Attempts)
}

func (e *GaveUpError) Unwrap() error { return e.Err }

// Value is Do for a call that returns a value (a read, mostly) when the
// number of tries does not matter.
func Value[T any](ctx context.Context, p Policy, fn func(context.Context) (T, error)) (T, error) {
	var v T
	_, err := Do(ctx, p, func(ctx context.Context) (err error) {
		v, err = fn(ctx)
		return err
	})
	return v, err
}

// RunAgain ends the message of a write that failed when even the look
// afterwards could not tell whether a try went through, for commands that
// finish the job when run again.
const RunAgain = "an earlier try may have gone through: run the same command again to finish"

// MayHaveApplied reports whether a write that Do ran tries times and that
// failed with err may still have been applied: the retries ran out, and an
// earlier try whose answer was lost can have reached the server. The caller
// should look at the object before calling the write a failure.
func MayHaveApplied(tries int, err error) bool {
	var g *GaveUpError
	return tries > 1 && errors.As(err, &g)
}

// wait is the server's Retry-After when it gave one, else exponential
// backoff with jitter in [d/2, d], both capped at Max.
func (p Policy) wait(attempt int, err error) time.Duration {
	max := p.Max
	if max <= 0 {
		max = 5 * time.Second
	}
	if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
		return min(time.Duration(s)*time.Second, max)
	}
	d := p.Initial
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}
