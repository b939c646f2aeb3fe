package framework

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SetTrackingSinceNow is SetTrackingSince returning an error, for TestMain
// where there is no testing.TB yet (see SetTrackingSince for why it writes
// through the API). It waits until the day reads back.
func (c *Cluster) SetTrackingSinceNow(day time.Time) error {
	want := day.UTC().Format(DayFormat)
	cms := c.Client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	ctx := context.Background()
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		cm, err := cms.Get(ctx, TrackingConfigMap, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, last = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: TrackingConfigMap},
				Data:       map[string]string{TrackingSinceKey: want},
			}, metav1.CreateOptions{})
			continue
		case err != nil:
			last = err
			continue
		case cm.Data[TrackingSinceKey] == want:
			return nil
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[TrackingSinceKey] = want
		_, last = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	return fmt.Errorf("set the legacy token tracking start to %s: %v", want, last)
}
