// Package workload is the table of workload kinds: for each kind that
// carries a pod template, its group, resource and kubectl names, where its
// pod template is, how it is listed, read and patched, what counts as its
// rollout history, how its rollout is judged and whether it can be
// restarted. Every package that acts per kind (the audit's readers in
// pkg/legacy, pkg/switcher, pkg/restart) asks this table, as kubectl's
// pkg/polymorphichelpers answers per capability with one switch over
// kinds; adding a kind is one entry: builtin.go holds the kinds of core,
// apps and batch (client-go's typed client), custom.go those of other
// projects' APIs (Argo Rollouts and Workflows, Knative, KEDA, OpenShift's
// DeploymentConfig; the dynamic client), each with its rules cited from
// the project's own code.
//
// It also owns what is read from a pod spec (VisitSecretNames) and the
// checksum of a pod template (TemplateSum).
//
// Beyond the table, it finds pod specs by their shape (shape.go): where
// the schemas the apiserver publishes in /openapi/v3 have them (Discover,
// PodSpecPaths) and what objects' data holds there (PodSpecs, or
// PodSpecsJSON over the undecoded JSON), or, for an
// API whose schema says nothing, anywhere in the data (SearchPodSpecs).
//
// It knows no command and no run: it must not import pkg/legacy,
// pkg/switcher, pkg/backup, pkg/restart or pkg/cmd.
package workload
