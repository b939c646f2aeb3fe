package kubeapi

import (
	"context"
	"errors"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// EachPage lists page after page (each LIST repeated on transient errors)
// and hands every page to each, until the server says there is no more or
// each fails.
//
// A continue token that expired midway (410 Gone: etcd compacted the
// revision of the first page) is followed by the token the error itself
// carries, which goes on after the last key handed out, at the latest
// revision (k8s.io/apiserver pkg/storage/etcd3/errors.go,
// handleCompactedErrorForPaging: "use the continue token in this response
// to retrieve the remainder of the results"): the list is then not one
// snapshot, which a judgement per object does not need, but no object is
// handed out twice and no full list is made again. client-go's pager
// (tools/pager, ListPager.List) would instead fall back to one unpaged
// LIST of everything, the memory spike paging avoids, and starting over
// would hand out the first pages twice. Without such a token the error is
// returned.
func EachPage[L interface{ GetContinue() string }](ctx context.Context, lo metav1.ListOptions,
	list func(context.Context, metav1.ListOptions) (L, error), each func(L) error) error {
	for {
		page, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (L, error) { return list(ctx, lo) })
		if next := inconsistentContinue(err); lo.Continue != "" && next != "" {
			lo.Continue = next
			continue
		}
		if err != nil {
			return err
		}
		if err := each(page); err != nil {
			return err
		}
		if lo.Continue = page.GetContinue(); lo.Continue == "" {
			return nil
		}
		// As client-go's pager does (tools/pager, ListPager.List): "to
		// avoid the `specifying resource version is not allowed when
		// using continue` error".
		lo.ResourceVersion, lo.ResourceVersionMatch = "", ""
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

// inconsistentContinue is the continue token a 410 on an expired continue
// token carries in its Status' metadata, or "".
func inconsistentContinue(err error) string {
	var st apierrors.APIStatus
	if err == nil || !apierrors.IsResourceExpired(err) || !errors.As(err, &st) {
		return ""
	}
	return st.Status().ListMeta.Continue
}
