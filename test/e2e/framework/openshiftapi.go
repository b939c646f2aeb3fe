package framework

import (
	"fmt"
	"path/filepath"

	"github.com/bound-token/kubectl-bound-token/test/modcache"
)

// crdSource is where a real CRD's manifest lives: file inside module@version.
type crdSource struct{ module, version, file string }

// realCRDs maps the name of each CRD the tests install from its
// publisher's module to its manifest there, with its schema and CEL
// rules. InstallCRD installs only these.
var realCRDs = map[string]crdSource{
	// The manifests the cluster-version operator applies on a
	// Default-feature-set cluster.
	"authentications.config.openshift.io": {modcache.OpenShiftAPI, modcache.OpenShiftAPIVersion,
		"config/v1/zz_generated.crd-manifests/0000_10_config-operator_01_authentications-Default.crd.yaml"},
	"kubeapiservers.operator.openshift.io": {modcache.OpenShiftAPI, modcache.OpenShiftAPIVersion,
		"operator/v1/zz_generated.crd-manifests/0000_20_kube-apiserver_01_kubeapiservers-Default.crd.yaml"},
	// The HostedCluster schema without feature-gated fields: what every
	// feature set installs (the module publishes no merged per-feature-set
	// CRD; HyperShift merges these files into the ones its install applies).
	// Fields behind a gate (ExternalOIDC, GCPPlatform, ...) are pruned here.
	// It needs one fix before the apiserver takes it: see installable.
	// Argo Rollouts' own CRD (manifests/crds, what its install.yaml
	// applies): its pod template is typed but for volumes, which it leaves
	// x-kubernetes-preserve-unknown-fields.
	"rollouts.argoproj.io": {modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "manifests/crds/rollout-crd.yaml"},
	// Knative Serving's own CRDs (config/core/300-resources, what its
	// serving-crds.yaml release asset holds) and KEDA's (config/crd/bases).
	"services.serving.knative.dev":       {modcache.KnativeServing, modcache.KnativeServingVersion, "config/core/300-resources/service.yaml"},
	"configurations.serving.knative.dev": {modcache.KnativeServing, modcache.KnativeServingVersion, "config/core/300-resources/configuration.yaml"},
	"revisions.serving.knative.dev":      {modcache.KnativeServing, modcache.KnativeServingVersion, "config/core/300-resources/revision.yaml"},
	// Argo Workflows' CRDs as its install applies them (minimal: spec is
	// x-kubernetes-preserve-unknown-fields).
	"workflowtemplates.argoproj.io": {modcache.ArgoWorkflows, modcache.ArgoWorkflowsVersion, "manifests/base/crds/minimal/argoproj.io_workflowtemplates.yaml"},
	"scaledjobs.keda.sh":            {modcache.KEDA, modcache.KEDAVersion, "config/crd/bases/keda.sh_scaledjobs.yaml"},
	// The rest of what its install applies, which its controller needs
	// too (RolloutsCRDs, StartRolloutsController).
	"experiments.argoproj.io":              {modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "manifests/crds/experiment-crd.yaml"},
	"analysisruns.argoproj.io":             {modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "manifests/crds/analysis-run-crd.yaml"},
	"analysistemplates.argoproj.io":        {modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "manifests/crds/analysis-template-crd.yaml"},
	"clusteranalysistemplates.argoproj.io": {modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "manifests/crds/cluster-analysis-template-crd.yaml"},
	// Kubeflow's TFJob (manifests/base/crds): pod templates in a map.
	"tfjobs.kubeflow.org": {modcache.KubeflowTraining, modcache.KubeflowTrainingVersion, "manifests/base/crds/kubeflow.org_tfjobs.yaml"},
	// OpenReports' own CRDs (config/crd, what its Helm chart installs),
	// for migrate --report and doctor --report.
	"reports.openreports.io":        {modcache.OpenReports, modcache.OpenReportsVersion, "config/crd/openreports.io_reports.yaml"},
	"clusterreports.openreports.io": {modcache.OpenReports, modcache.OpenReportsVersion, "config/crd/openreports.io_clusterreports.yaml"},
	"hostedclusters.hypershift.openshift.io": {modcache.HyperShiftAPI, modcache.HyperShiftAPIVersion,
		"hypershift/v1beta1/zz_generated.featuregated-crd-manifests/hostedclusters.hypershift.openshift.io/AAA_ungated.yaml"},
}

// crdManifest is the file InstallCRD reads for the CRD name: the real one
// from its publisher's module (realCRDs): never a hand-written stand-in.
func (c *Cluster) crdManifest(name string) (string, error) {
	return realCRDManifest(name)
}

func realCRDManifest(name string) (string, error) {
	src, ok := realCRDs[name]
	if !ok {
		return "", fmt.Errorf("no published manifest for CRD %s", name)
	}
	dir, err := modcache.Dir(src.module, src.version)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.FromSlash(src.file)), nil
}
