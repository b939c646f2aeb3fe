// Package hypershift rotates the service-account signing key of a HyperShift
// HostedCluster: a new Secret (never replacing the old one) whose "key" holds
// the new private key, as PKCS#1 RSA (the only form HyperShift reads), and
// "old-key.pub" the previous public key and the earlier ones still inside the
// trust window, so tokens signed before the rotation keep verifying; then
// spec.serviceAccountSigningKey is pointed at it, and WaitRollout follows
// HyperShift's ValidConfiguration and the hosted kube-apiserver's rollout.
//
// It owns what this tool reads and writes of
// hostedclusters.hypershift.openshift.io and of the signing-key Secrets
// next to them. It knows no flags and prints nothing: its errors say what
// was written (WriteError), what the cluster's state refused
// (RefusedError) or what input was wrong, and pkg/cmd maps them to exit
// codes; its dry run is kubectl's cmdutil.DryRunStrategy, as everywhere
// (pkg/kubeapi).
//
// It must not import pkg/cmd, pkg/openshift (OpenShift's issuer change is
// another product's rotation), pkg/fleet, or anything of migrate's
// (pkg/legacy, pkg/switcher, pkg/backup); keys come from pkg/keys and
// pkg/jwt.
package hypershift
