package switcher

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// FindOptions select the workloads to look at.
type FindOptions struct {
	// Namespace "" means every namespace.
	Namespace string
	// Refs are TYPE/NAME arguments (one namespace).
	Refs     []string
	Selector string
}

var kindAliases = map[string]string{
	"deployment": legacy.KindDeployment, "deployments": legacy.KindDeployment, "deploy": legacy.KindDeployment, "deployment.apps": legacy.KindDeployment,
	"statefulset": legacy.KindStatefulSet, "statefulsets": legacy.KindStatefulSet, "sts": legacy.KindStatefulSet, "statefulset.apps": legacy.KindStatefulSet,
	"daemonset": legacy.KindDaemonSet, "daemonsets": legacy.KindDaemonSet, "ds": legacy.KindDaemonSet, "daemonset.apps": legacy.KindDaemonSet,
	"replicaset": legacy.KindReplicaSet, "replicasets": legacy.KindReplicaSet, "rs": legacy.KindReplicaSet, "replicaset.apps": legacy.KindReplicaSet,
	"replicationcontroller": legacy.KindReplicationController, "replicationcontrollers": legacy.KindReplicationController, "rc": legacy.KindReplicationController,
	"cronjob": legacy.KindCronJob, "cronjobs": legacy.KindCronJob, "cj": legacy.KindCronJob, "cronjob.batch": legacy.KindCronJob,
	"job": KindJob, "jobs": KindJob, "job.batch": KindJob,
	"pod": KindPod, "pods": KindPod, "po": KindPod,
}

// KindNames are the TYPE words switch accepts, for completion.
func KindNames() []string {
	return []string{"deployment", "statefulset", "daemonset", "replicaset", "replicationcontroller", "cronjob", "job", "pod"}
}

// ParseRef reads TYPE/NAME.
func ParseRef(s string) (kind, name string, err error) {
	t, n, ok := strings.Cut(s, "/")
	kind = kindAliases[strings.ToLower(t)]
	if !ok || n == "" || kind == "" {
		return "", "", fmt.Errorf("%q: want TYPE/NAME with TYPE one of %s", s, strings.Join(KindNames(), ", "))
	}
	return kind, n, nil
}

func get(ctx context.Context, c kubernetes.Interface, kind, ns, name string) (runtime.Object, error) {
	o := metav1.GetOptions{}
	return retry.Value(ctx, retry.Default, func(ctx context.Context) (runtime.Object, error) {
		switch kind {
		case legacy.KindDeployment:
			return c.AppsV1().Deployments(ns).Get(ctx, name, o)
		case legacy.KindStatefulSet:
			return c.AppsV1().StatefulSets(ns).Get(ctx, name, o)
		case legacy.KindDaemonSet:
			return c.AppsV1().DaemonSets(ns).Get(ctx, name, o)
		case legacy.KindReplicaSet:
			return c.AppsV1().ReplicaSets(ns).Get(ctx, name, o)
		case legacy.KindReplicationController:
			return c.CoreV1().ReplicationControllers(ns).Get(ctx, name, o)
		case legacy.KindCronJob:
			return c.BatchV1().CronJobs(ns).Get(ctx, name, o)
		case KindJob:
			return c.BatchV1().Jobs(ns).Get(ctx, name, o)
		case KindPod:
			return c.CoreV1().Pods(ns).Get(ctx, name, o)
		}
		return nil, fmt.Errorf("unknown kind %s", kind)
	})
}

// GetWorkload reads one workload.
func GetWorkload(ctx context.Context, c kubernetes.Interface, kind, ns, name string) (*Workload, error) {
	obj, err := get(ctx, c, kind, ns, name)
	if err != nil {
		return nil, err
	}
	return NewWorkload(obj)
}

// Tokens lists the legacy token Secrets of ns ("" all), by namespace and
// name.
func Tokens(ctx context.Context, c kubernetes.Interface, ns string) (map[string]map[string]*corev1.Secret, error) {
	out := map[string]map[string]*corev1.Secret{}
	lo := metav1.ListOptions{Limit: 500, FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()}
	err := kubeapi.EachPage(ctx, lo, c.CoreV1().Secrets(ns).List, func(l *corev1.SecretList) error {
		for i := range l.Items {
			s := &l.Items[i]
			if out[s.Namespace] == nil {
				out[s.Namespace] = map[string]*corev1.Secret{}
			}
			out[s.Namespace][s.Name] = s
		}
		return nil
	})
	if err != nil {
		return nil, kubeapi.DescribeAPIError(err, "list", "secrets", ns)
	}
	return out, nil
}

// Find plans the switch of every selected workload that reads a legacy
// token Secret. Pods and Jobs run by a workload, and ReplicaSets of a
// Deployment, are not listed: their owner is.
func Find(ctx context.Context, c kubernetes.Interface, fo FindOptions, o Options) ([]*Plan, error) {
	tokens, err := Tokens(ctx, c, fo.Namespace)
	if err != nil {
		return nil, err
	}
	reads := func(w *Workload) bool {
		found := false
		legacy.VisitSecretNames(&w.Template().Spec, func(name, _ string) {
			if tokens[w.Object.GetNamespace()][name] != nil {
				found = true
			}
		})
		return found
	}
	var ws []*Workload
	if len(fo.Refs) > 0 {
		for _, r := range fo.Refs {
			kind, name, err := ParseRef(r)
			if err != nil {
				return nil, err
			}
			w, err := GetWorkload(ctx, c, kind, fo.Namespace, name)
			if err != nil {
				return nil, kubeapi.DescribeAPIError(err, "get", strings.ToLower(kind)+"s", fo.Namespace)
			}
			ws = append(ws, w)
		}
	} else if len(tokens) > 0 {
		if ws, err = list(ctx, c, fo.Namespace, fo.Selector); err != nil {
			return nil, err
		}
	}
	var plans []*Plan
	for _, w := range ws {
		if !reads(w) {
			continue
		}
		plans = append(plans, MakePlan(w, tokens[w.Object.GetNamespace()], o))
	}
	sortPlans(plans)
	return plans, nil
}

func sortPlans(plans []*Plan) {
	order := map[string]int{}
	for i, k := range []string{legacy.KindDeployment, legacy.KindStatefulSet, legacy.KindDaemonSet, legacy.KindCronJob, legacy.KindReplicaSet, legacy.KindReplicationController, KindJob, KindPod} {
		order[k] = i
	}
	sort.SliceStable(plans, func(i, j int) bool {
		a, b := plans[i], plans[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return order[a.Kind] < order[b.Kind]
		}
		return a.Name < b.Name
	})
}

// list runs one LIST per kind, at once.
func list(ctx context.Context, c kubernetes.Interface, ns, selector string) ([]*Workload, error) {
	lo := metav1.ListOptions{Limit: 500, LabelSelector: selector}
	apps, batch, core := c.AppsV1(), c.BatchV1(), c.CoreV1()
	type one struct {
		resource string
		run      func(add func(runtime.Object)) error
	}
	lists := []one{
		{"deployments", func(add func(runtime.Object)) error {
			return kubeapi.EachPage(ctx, lo, apps.Deployments(ns).List, func(l *appsv1.DeploymentList) error {
				for i := range l.Items {
					add(&l.Items[i])
				}
				return nil
			})
		}},
		{"statefulsets", func(add func(runtime.Object)) error {
			return kubeapi.EachPage(ctx, lo, apps.StatefulSets(ns).List, func(l *appsv1.StatefulSetList) error {
				for i := range l.Items {
					add(&l.Items[i])
				}
				return nil
			})
		}},
		{"daemonsets", func(add func(runtime.Object)) error {
			return kubeapi.EachPage(ctx, lo, apps.DaemonSets(ns).List, func(l *appsv1.DaemonSetList) error {
				for i := range l.Items {
					add(&l.Items[i])
				}
				return nil
			})
		}},
		{"replicasets", func(add func(runtime.Object)) error {
			return kubeapi.EachPage(ctx, lo, apps.ReplicaSets(ns).List, func(l *appsv1.ReplicaSetList) error {
				for i := range l.Items {
					// A Deployment's ReplicaSets follow its template.
					if ref := metav1.GetControllerOf(&l.Items[i]); ref != nil && ref.Kind == legacy.KindDeployment {
						continue
					}
					add(&l.Items[i])
				}
				return nil
			})
		}},
		{"replicationcontrollers", func(add func(runtime.Object)) error {
			return kubeapi.EachPage(ctx, lo, core.ReplicationControllers(ns).List, func(l *corev1.ReplicationControllerList) error {
				for i := range l.Items {
					if l.Items[i].Spec.Template != nil {
						add(&l.Items[i])
					}
				}
				return nil
			})
		}},
		{"cronjobs", func(add func(runtime.Object)) error {
			return kubeapi.EachPage(ctx, lo, batch.CronJobs(ns).List, func(l *batchv1.CronJobList) error {
				for i := range l.Items {
					add(&l.Items[i])
				}
				return nil
			})
		}},
		{"jobs", func(add func(runtime.Object)) error {
			return kubeapi.EachPage(ctx, lo, batch.Jobs(ns).List, func(l *batchv1.JobList) error {
				for i := range l.Items {
					// A CronJob's Jobs follow its template.
					if ref := metav1.GetControllerOf(&l.Items[i]); ref != nil && ref.Kind == legacy.KindCronJob {
						continue
					}
					add(&l.Items[i])
				}
				return nil
			})
		}},
		{"pods", func(add func(runtime.Object)) error {
			return kubeapi.EachPage(ctx, lo, core.Pods(ns).List, func(l *corev1.PodList) error {
				for i := range l.Items {
					// Only bare pods: a controller's pods follow its
					// template.
					if metav1.GetControllerOf(&l.Items[i]) != nil {
						continue
					}
					add(&l.Items[i])
				}
				return nil
			})
		}},
	}
	var mu sync.Mutex
	var out []*Workload
	errs := make([]error, len(lists))
	var wg sync.WaitGroup
	for i, l := range lists {
		wg.Add(1)
		go func(i int, l one) {
			defer wg.Done()
			err := l.run(func(obj runtime.Object) {
				w, _ := NewWorkload(obj)
				mu.Lock()
				out = append(out, w)
				mu.Unlock()
			})
			if err != nil {
				errs[i] = kubeapi.DescribeAPIError(err, "list", l.resource, ns)
			}
		}(i, l)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
