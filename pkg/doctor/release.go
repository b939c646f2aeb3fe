package doctor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// The release checks say which release-dependent features the cluster
// has, judged by what it serves and reports, never by its version number:
// a feature gate, --runtime-config or a vendor's build moves a feature
// between releases (MutatingAdmissionPolicy is beta and off in 1.34/1.35,
// the external signer beta and on in 1.34).

// releaseInputs is what the release checks take from the earlier ones.
type releaseInputs struct {
	GitVersion string
	// JWKS is the cluster's /openid/v1/jwks, nil when unreadable.
	JWKS *jwt.KeySet
	// Metrics is kube-apiserver's /metrics, or MetricsErr.
	Metrics    []byte
	MetricsErr error
	LookupEnv  func(string) (string, bool)
	// Guard is the guard's clients, for the guard check.
	Guard *guard.Cluster
}

func releaseChecks(ctx context.Context, cs kubernetes.Interface, in releaseInputs) []Check {
	lookup := in.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	kubectlPath, _ := lookup(kubectlPathEnv)
	out := []Check{
		releaseCheck(in.GitVersion, kubectlPath),
		admissionPolicies(ctx, cs.Discovery()),
		guardCheck(ctx, in.Guard),
	}
	signer, inUse := externalSigner(in.Metrics, in.MetricsErr)
	out = append(out, signer)
	if inUse {
		kids, err := legacyTokenKeyIDs(ctx, cs)
		out = append(out, signerLegacyKey(kids, err, in.JWKS, in.Metrics))
	}
	return out
}

// kubectlPathEnv is set by kubectl 1.37 and newer to its own binary for
// every plugin it runs, after dropping any inherited value
// (k8s.io/kubectl@v0.37.2 pkg/cmd/plugin.go, pluginEnvironment). It is
// absent when the plugin runs directly or under an older kubectl.
const kubectlPathEnv = "KUBECTL_PATH"

// releaseCheck shows the server's version (from /version) and the kubectl
// that launched the plugin: informational, so it always passes.
func releaseCheck(gitVersion, kubectlPath string) Check {
	msg := "kube-apiserver " + gitVersion + " (/version); "
	if kubectlPath != "" {
		msg += "launched by kubectl " + kubectlPath + " (" + kubectlPathEnv + ", set by kubectl 1.37 and newer)"
	} else {
		msg += "no " + kubectlPathEnv + ": run directly or by a kubectl older than 1.37"
	}
	return Check{"release", Pass, msg, ""}
}

const admissionGroup = guard.Group

// mapResource is the policy's resource, in every version.
var mapResource = guard.PolicyResource(guard.VersionV1).Resource

// admissionPolicies says which version of admissionregistration serves
// MutatingAdmissionPolicy, newest first (guard.ServedVersion: one small
// request on a 1.36+ cluster). v1 is GA and on by default from 1.36;
// v1beta1 in 1.34/1.35 only with the MutatingAdmissionPolicy feature gate
// together with --runtime-config=admissionregistration.k8s.io/v1beta1=true;
// v1alpha1 before (pkg/features/kube_features.go, MutatingAdmissionPolicy).
// Served is not enforced; the guard check proves whether it acts.
func admissionPolicies(ctx context.Context, d discovery.DiscoveryInterface) Check {
	name := "admission-policies"
	v, err := guard.ServedVersion(ctx, d, guard.DiscoveryVersions...)
	if err != nil {
		return Check{name, Warn, "MutatingAdmissionPolicy: unknown, " + text.OneLine(err.Error(), 300),
			"allow discovery (ClusterRole system:discovery) to who runs doctor"}
	}
	gv := admissionGroup + "/" + v
	switch v {
	case guard.VersionV1:
		return Check{name, Pass, "MutatingAdmissionPolicy served at " + gv + ": the guard (self-healing invalidation) can run inside kube-apiserver, nothing to run beside it", ""}
	case guard.VersionV1beta1:
		return Check{name, Pass, "MutatingAdmissionPolicy served at " + gv + " (beta, enabled on this cluster): the guard (self-healing invalidation) can run inside kube-apiserver through v1beta1", ""}
	case "":
		return Check{name, Warn, "MutatingAdmissionPolicy not served (" + admissionGroup + " v1, v1beta1, v1alpha1): the guard (self-healing invalidation) cannot run inside kube-apiserver and needs guard watch",
			"upgrade to 1.36+ (v1), or on 1.34/1.35 set the feature gate MutatingAdmissionPolicy=true together with --runtime-config=" + admissionGroup + "/v1beta1=true; else run guard watch"}
	}
	return Check{name, Warn, "MutatingAdmissionPolicy served only at " + gv + " (alpha): the guard needs v1 or v1beta1, so it runs as guard watch here",
		"serve v1beta1 (feature gate MutatingAdmissionPolicy=true with --runtime-config=" + admissionGroup + "/v1beta1=true) or upgrade to 1.36+, or run guard watch"}
}

// The external signer's series. No API says whether kube-apiserver signs
// with --service-account-signing-endpoint; these series are the tell. They
// are vectors registered by k8s.io/kubernetes@v1.37.2
// pkg/serviceaccount/externaljwt/metrics/metrics.go (RegisterMetrics, from
// plugin.go's init), so they are in every kube-apiserver binary but show
// no sample until RecordFetchKeysAttempt is first called: by
// keyCache.syncKeys (pkg/serviceaccount/externaljwt/plugin/keycache.go),
// which plugin.New's initial fill runs at start-up only when the signing
// endpoint is set (pkg/controlplane/apiserver/options/options.go,
// Complete), and on every refresh after.
const (
	signerSeriesPrefix = "apiserver_externaljwt_fetch_keys_"
	// signerFetchKeys counts FetchKeys calls by gRPC code ("OK" succeeded).
	signerFetchKeys = "apiserver_externaljwt_fetch_keys_request_total"
	// signerLastSuccess is the Unix time of the last successful FetchKeys.
	signerLastSuccess = "apiserver_externaljwt_fetch_keys_success_timestamp"
)

// signerMetrics is what the external signer's series say.
type signerMetrics struct {
	inUse            bool
	fetches, failed  float64
	lastSuccess      float64 // Unix seconds, 0 when not exported
	lastSuccessKnown bool
}

func parseSignerMetrics(b []byte) signerMetrics {
	var m signerMetrics
	eachSample(b, func(name, labels string, v float64) {
		if !strings.HasPrefix(name, signerSeriesPrefix) {
			return
		}
		m.inUse = true
		switch name {
		case signerFetchKeys:
			m.fetches += v
			if code, _ := labelValue(labels, "code"); code != "OK" {
				m.failed += v
			}
		case signerLastSuccess:
			m.lastSuccess, m.lastSuccessKnown = v, true
		}
	})
	return m
}

// externalSigner says whether this kube-apiserver signs tokens through an
// external signer (ExternalServiceAccountTokenSigner: beta and on by
// default from 1.34, GA from 1.36), from /metrics alone: when /metrics
// cannot be read the answer is unknown, never a guess from the version.
func externalSigner(b []byte, err error) (Check, bool) {
	name := "external-signer"
	if err != nil {
		return Check{name, Warn, "external signer: unknown, cannot read kube-apiserver /metrics: " + describeMetricsErr(err),
			`allow "get" on the non-resource URL /metrics, or look for --service-account-signing-endpoint in kube-apiserver's flags`}, false
	}
	m := parseSignerMetrics(b)
	if !m.inUse {
		return Check{name, Pass, "external signer: not in use (no " + signerSeriesPrefix + "* series on this apiserver): it signs with --service-account-signing-key-file and the JWKS holds the keys of --service-account-key-file", ""}, false
	}
	msg := fmt.Sprintf("external signer: in use (%g key fetches by this apiserver since it started", m.fetches)
	if m.lastSuccessKnown {
		msg += ", the last successful at " + time.Unix(int64(m.lastSuccess), 0).UTC().Format(time.RFC3339)
	}
	msg += "): tokens are signed by the signer at --service-account-signing-endpoint and the JWKS keys come from it"
	if m.failed > 0 {
		return Check{name, Warn, fmt.Sprintf("%s; %g key fetches failed", msg, m.failed),
			"kube-apiserver keeps the keys of its last successful fetch: check the signer's FetchKeys (its logs, its socket)"}, true
	}
	return Check{name, Pass, msg, ""}, true
}

// legacyKeyIDs are the kids of the legacy tokens that still authenticate
// (token Secrets without invalid-since), with how many Secrets carry each.
type legacyKeyIDs struct {
	kids  map[string]int
	noKid int
}

// legacyTokenKeyIDs lists the token Secrets and reads the kid from the
// JOSE header of each token, nothing else: the claims and the signature
// are never decoded, and the tokens are dropped with the list.
func legacyTokenKeyIDs(ctx context.Context, cs kubernetes.Interface) (legacyKeyIDs, error) {
	out := legacyKeyIDs{kids: map[string]int{}}
	list, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken)})
	if err != nil {
		return out, err
	}
	for _, s := range list.Items {
		tok := s.Data[corev1.ServiceAccountTokenKey]
		if len(tok) == 0 || s.Labels[legacy.LabelInvalidSince] != "" {
			continue
		}
		if kid := headerKeyID(tok); kid != "" {
			out.kids[kid]++
		} else {
			out.noKid++
		}
	}
	return out, nil
}

// headerKeyID is the "kid" of a compact JWS's header, "" when it has none
// or does not decode.
func headerKeyID(tok []byte) string {
	head, _, ok := strings.Cut(string(tok), ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Kid
}

// signerLegacyKey says whether legacy Secret tokens still verify under an
// external signer. kube-controller-manager signs them with its own
// --service-account-private-key-file (a kid of kube-apiserver's kind), and
// kube-apiserver verifies them with the signer's keys alone, looked up by
// that kid (pkg/kubeapiserver/options/authentication.go ToAuthenticationConfig:
// ExternalPublicKeysGetter; pkg/serviceaccount/jwt.go AuthenticateToken).
// The JWKS lists the signer's keys except those marked
// exclude_from_oidc_discovery, so a kid found there verifies, and one
// missing may still be served: that is said, not guessed.
// serviceaccount_legacy_tokens_total counts legacy tokens whose signature
// verified (jwt.go AuthenticateToken), so a count above zero proves some
// did on this apiserver.
func signerLegacyKey(ids legacyKeyIDs, listErr error, ks *jwt.KeySet, metrics []byte) Check {
	name := "external-signer-legacy-tokens"
	verified := ParseCounters(metrics, legacyCounters[:1])[legacyCounters[0]]
	proof := ""
	if verified > 0 {
		proof = fmt.Sprintf("; %g legacy tokens verified on this apiserver since it started", verified)
	}
	fix := "make the signer's FetchKeys return kube-controller-manager's public key (of its --service-account-private-key-file), or legacy Secret tokens fail: kubectl bound-token migrate -A shows who uses them"
	if listErr != nil {
		return Check{name, Warn, "legacy Secret tokens verify only if the signer also serves kube-controller-manager's key; cannot list token Secrets to compare their kids with the JWKS: " + text.OneLine(listErr.Error(), 200) + proof, fix}
	}
	total := ids.noKid
	for _, n := range ids.kids {
		total += n
	}
	if total == 0 {
		return Check{name, Pass, "no valid legacy token Secrets: nothing depends on kube-controller-manager's key", ""}
	}
	if ks == nil {
		return Check{name, Warn, fmt.Sprintf("%d legacy token Secret%s verify only if the signer also serves kube-controller-manager's key; the JWKS could not be read to compare%s", total, text.Plural(total), proof), fix}
	}
	inJWKS := map[string]bool{}
	for _, k := range ks.Keys {
		inJWKS[k.ID] = true
	}
	var found, missing, missingKids []string
	for kid, n := range ids.kids {
		s := fmt.Sprintf("%s (%d Secret%s)", kid, n, text.Plural(n))
		if inJWKS[kid] {
			found = append(found, s)
		} else {
			missing = append(missing, s)
			missingKids = append(missingKids, kid)
		}
	}
	sort.Strings(found)
	sort.Strings(missing)
	sort.Strings(missingKids)
	if len(missing) == 0 && ids.noKid == 0 {
		return Check{name, Pass, "the JWKS carries kube-controller-manager's key for every legacy token Secret, kid " + strings.Join(found, ", ") + ": they verify", ""}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "the JWKS lacks kid "+strings.Join(missing, ", ")+" of legacy token Secrets (the signer may still serve it, excluded from discovery)")
	}
	if ids.noKid > 0 {
		parts = append(parts, fmt.Sprintf("%d legacy token Secret%s carry no kid and verify only against a key the signer serves", ids.noKid, text.Plural(ids.noKid)))
	}
	if len(missing) > 0 {
		fix = "make the signer's FetchKeys return kube-controller-manager's public key with kid " + strings.Join(missingKids, ", ") + " (exclude_from_oidc_discovery keeps it out of the JWKS), or those tokens fail: kubectl bound-token migrate -A shows who uses them"
	}
	return Check{name, Warn, strings.Join(parts, "; ") + proof, fix}
}
