// Command switchedit is the "edit" step of the loop BenchmarkSwitch200
// compares `switch` with: it reads one workload as `kubectl get -o yaml`
// prints it and writes it back with the pod template rewritten exactly as
// switch rewrites it (switcher.MakePlan), for `kubectl apply -f`. It makes
// no API call: the Secret named by its argument is taken to be a legacy
// token of the pod's ServiceAccount, filled by the token controller (keys
// token, ca.crt, namespace), as the user writing the loop knows it is.
package main

import (
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "switchedit:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: switchedit SECRET < deployment.yaml")
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	d := &appsv1.Deployment{}
	if err := yaml.Unmarshal(in, d); err != nil {
		return err
	}
	w, err := switcher.NewWorkload(d)
	if err != nil {
		return err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: os.Args[1], Namespace: d.Namespace,
			Annotations: map[string]string{corev1.ServiceAccountNameKey: switcher.PodServiceAccount(&d.Spec.Template.Spec)}},
		Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{corev1.ServiceAccountTokenKey: nil, corev1.ServiceAccountRootCAKey: nil, corev1.ServiceAccountNamespaceKey: nil},
	}
	p := switcher.MakePlan(w, map[string]*corev1.Secret{s.Name: s}, switcher.Options{})
	if !p.Switchable() {
		return fmt.Errorf("%s/%s: %s %v", d.Namespace, d.Name, p.Verdict, p.Reasons)
	}
	d.Spec.Template = *p.Template
	out, err := yaml.Marshal(d)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
