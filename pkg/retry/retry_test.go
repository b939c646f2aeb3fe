package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var sa = schema.GroupResource{Resource: "serviceaccounts"}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429", apierrors.NewTooManyRequests("slow down", 1), true},
		{"500", apierrors.NewInternalError(errors.New("boom")), true},
		{"503", apierrors.NewServiceUnavailable("later"), true},
		{"504 server timeout", apierrors.NewServerTimeout(sa, "create", 1), true},
		{"502 from a proxy", apierrors.NewGenericServerResponse(502, "get", sa, "x", "bad gateway", 0, false), true},
		{"connection reset", fmt.Errorf("post: %w", syscall.ECONNRESET), true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"404", apierrors.NewNotFound(sa, "x"), false},
		{"403", apierrors.NewForbidden(sa, "x", errors.New("no")), false},
		{"409", apierrors.NewConflict(sa, "x", errors.New("changed")), false},
		{"422", apierrors.NewBadRequest("bad"), false},
		{"canceled", fmt.Errorf("get: %w", context.Canceled), false},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), false},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

var fast = Policy{Attempts: 4, Initial: time.Millisecond, Max: 5 * time.Millisecond}

func TestDoRetriesTransientUntilSuccess(t *testing.T) {
	n := 0
	attempts, err := Do(context.Background(), fast, func(context.Context) error {
		n++
		if n < 3 {
			return apierrors.NewServiceUnavailable("later")
		}
		return nil
	})
	if err != nil || attempts != 3 || n != 3 {
		t.Fatalf("attempts=%d n=%d err=%v; want success on the 3rd", attempts, n, err)
	}
}

func TestDoStopsAtOnceOnPermanentErrors(t *testing.T) {
	n := 0
	attempts, err := Do(context.Background(), fast, func(context.Context) error {
		n++
		return apierrors.NewNotFound(sa, "x")
	})
	if n != 1 || attempts != 1 || !apierrors.IsNotFound(err) {
		t.Fatalf("n=%d attempts=%d err=%v", n, attempts, err)
	}
	var g *GaveUpError
	if errors.As(err, &g) {
		t.Error("a permanent error is reported as giving up on retries")
	}
}

func TestDoGivesUpAndSaysSo(t *testing.T) {
	n := 0
	attempts, err := Do(context.Background(), fast, func(context.Context) error {
		n++
		return apierrors.NewInternalError(errors.New("boom"))
	})
	if n != 4 || attempts != 4 {
		t.Fatalf("ran %d times, want 4", n)
	}
	if !apierrors.IsInternalError(err) {
		t.Errorf("the last error is lost: %v", err)
	}
	if want := "(gave up after 4 attempts)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestDoHonoursContextAndRetryAfter(t *testing.T) {
	// Retry-After 1 s, capped by Max at 50 ms: two retries take ~100 ms.
	p := Policy{Attempts: 3, Initial: time.Millisecond, Max: 50 * time.Millisecond}
	start := time.Now()
	_, _ = Do(context.Background(), p, func(context.Context) error { return apierrors.NewTooManyRequests("slow", 1) })
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("two Retry-After waits capped at 50ms took %s", took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	p = Policy{Attempts: 100, Initial: 10 * time.Second, Max: 10 * time.Second}
	start = time.Now()
	n := 0
	_, err := Do(ctx, p, func(context.Context) error { n++; return apierrors.NewServiceUnavailable("later") })
	if time.Since(start) > time.Second || n != 1 {
		t.Fatalf("did not stop when the context ended: %d tries in %s", n, time.Since(start))
	}
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "stopped retrying") {
		t.Errorf("err = %v", err)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	err := errors.New("x")
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 6: time.Second} {
		for i := 0; i < 50; i++ {
			if d := p.wait(attempt, err); d < want/2 || d > want {
				t.Fatalf("attempt %d: wait %s outside [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
}

// Only a write whose retries ran out after more than one try may have been
// applied unseen: a permanent error or a single try says what happened.
func TestMayHaveApplied(t *testing.T) {
	transient := func(context.Context) error { return apierrors.NewInternalError(errors.New("boom")) }
	n, err := Do(context.Background(), fast, transient)
	if !MayHaveApplied(n, err) {
		t.Errorf("gave up after %d tries: %v", n, err)
	}
	n, err = Do(context.Background(), Policy{Attempts: 1}, transient)
	if MayHaveApplied(n, err) {
		t.Errorf("a single try: %v", err)
	}
	n, err = Do(context.Background(), fast, func(context.Context) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "x", errors.New("no"))
	})
	if MayHaveApplied(n, err) || MayHaveApplied(3, err) {
		t.Errorf("a permanent error: %v", err)
	}
	if MayHaveApplied(3, nil) {
		t.Error("no error")
	}
}

// Value hands back the value of the try that succeeded, and on failure the
// last error with what Do adds to it.
func TestValueReturnsTheSuccessfulTrysValue(t *testing.T) {
	n := 0
	v, err := Value(context.Background(), fast, func(context.Context) (int, error) {
		n++
		if n < 3 {
			return -n, apierrors.NewServiceUnavailable("later")
		}
		return 10 * n, nil
	})
	if err != nil || v != 30 || n != 3 {
		t.Fatalf("v=%d n=%d err=%v; want 30 from the 3rd try", v, n, err)
	}
	_, err = Value(context.Background(), fast, func(context.Context) (string, error) {
		return "", apierrors.NewServiceUnavailable("later")
	})
	var g *GaveUpError
	if !errors.As(err, &g) || !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("err=%v; want a GaveUpError that is still a 503", err)
	}
}
