package kubeapi

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// EachPage lists page after page (each LIST repeated on transient errors)
// and hands every page to each, until the server says there is no more or
// each fails.
func EachPage[L interface{ GetContinue() string }](ctx context.Context, lo metav1.ListOptions,
	list func(context.Context, metav1.ListOptions) (L, error), each func(L) error) error {
	for {
		page, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (L, error) { return list(ctx, lo) })
		if err != nil {
			return err
		}
		if err := each(page); err != nil {
			return err
		}
		if lo.Continue = page.GetContinue(); lo.Continue == "" {
			return nil
		}
	}
}

// Parallel calls fn(0..n-1) on at most workers goroutines.
func Parallel(n, workers int, fn func(int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// Sleep waits d unless ctx ends first (false): the pause between two
// attempts of a loop that must stop when the command is interrupted.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
