// Package doctor checks a cluster's service-account token setup and says,
// for every problem, the one thing to do about it.
//
// It owns the checks and their advice; it only reads, apart from minting
// one short-lived token. It must not import pkg/cmd (which prints the
// checks) or the packages that change a cluster or local files: pkg/restart,
// pkg/backup, pkg/switcher and pkg/fleet.
package doctor

import (
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"

	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
	"github.com/bound-token/kubectl-bound-token/pkg/tokens"
)

type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check is one line of the checklist.
type Check struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

type Options struct {
	Namespace      string
	ServiceAccount string
	// IssuerTimeout bounds the public discovery probe.
	IssuerTimeout time.Duration
	HTTPClient    *http.Client
	// LookupEnv reads the plugin's environment (KUBECTL_PATH); nil is
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// RESTConfig is the connection's settings, for the guard check's
	// metadata client and its client impersonating kube-apiserver; nil
	// leaves the guard's counts unknown and its proof unproven.
	RESTConfig *rest.Config
}

// Run performs every check in order; later checks that need an earlier
// answer are skipped when it is missing.
func Run(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, o Options) []Check {
	var out []Check
	add := func(c Check) { out = append(out, c) }

	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		add(Check{"api", Fail, "the API server is not reachable: " + text.OneLine(err.Error(), 300), "check --kubeconfig/--context and that the cluster is up"})
		return out
	}
	add(Check{"api", Pass, "kube-apiserver " + sv.GitVersion, ""})

	if o.ServiceAccount == "" {
		o.ServiceAccount = "default"
	}
	c, tok, raw := tokenRequest(ctx, cs, tokens.Target{Namespace: o.Namespace, Name: o.ServiceAccount})
	add(c)
	add(issuerDiscovery(ctx, cs, tok))
	c, ks := issuerJWKS(ctx, cs, tok, raw)
	add(c)

	add(publicDiscovery(ctx, tok, o))
	add(legacySecrets(ctx, cs))
	// One read of /metrics (megabytes on a busy apiserver) serves every
	// check that reads counters.
	metrics, metricsErr := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	add(legacyMetrics(metrics, metricsErr))
	add(nodeBinding(sv.GitVersion))
	out = append(out, releaseChecks(ctx, cs, releaseInputs{
		GitVersion: sv.GitVersion, JWKS: ks, Metrics: metrics, MetricsErr: metricsErr, LookupEnv: o.LookupEnv,
		Guard: guardClients(cs, dyn, o.RESTConfig),
	})...)
	if dyn != nil {
		out = append(out, openShift(ctx, dyn)...)
		out = append(out, hyperShift(ctx, cs, dyn)...)
	}
	return out
}

// tokenRequest mints a short token for target; tok is nil when that fails
// or the token does not decode, and raw is the token as minted.
func tokenRequest(ctx context.Context, cs kubernetes.Interface, target tokens.Target) (Check, *jwt.Token, string) {
	tr, err := tokens.Mint(ctx, cs, target, tokens.Request{Duration: tokens.MinDuration})
	if err != nil {
		return Check{"token-request", Fail, text.OneLine(err.Error(), 300), "grant create on serviceaccounts/token, or pick another --serviceaccount"}, nil, ""
	}
	tok, err := jwt.Decode(tr.Status.Token)
	if err != nil {
		return Check{"token-request", Fail, "the server returned a token that does not decode: " + text.OneLine(err.Error(), 300), "check kube-apiserver's --service-account-signing-key-file"}, nil, ""
	}
	return Check{"token-request", Pass, fmt.Sprintf("minted a token for %s (iss %s, kid %s)", target, tok.Claims.Issuer, tok.Header.KeyID), ""}, tok, tr.Status.Token
}

// issuerDiscovery compares the issuer of /.well-known/openid-configuration
// with tok's (nil: none was minted).
func issuerDiscovery(ctx context.Context, cs kubernetes.Interface, tok *jwt.Token) Check {
	var disc jwt.Discovery
	db, err := cs.CoreV1().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	switch {
	case err != nil:
		return Check{"discovery", Fail, "cannot read /.well-known/openid-configuration: " + text.OneLine(err.Error(), 300), "bind ClusterRole system:service-account-issuer-discovery to who runs doctor, or check --service-account-issuer"}
	case json.Unmarshal(db, &disc) != nil:
		return Check{"discovery", Fail, "/.well-known/openid-configuration is not JSON", "check kube-apiserver's --service-account-jwks-uri"}
	case tok == nil:
		return Check{"discovery", Skip, "issuer " + disc.Issuer + "; no token to compare with", ""}
	case disc.Issuer != tok.Claims.Issuer:
		return Check{"discovery", Fail, fmt.Sprintf("discovery says issuer %q but new tokens carry %q", disc.Issuer, tok.Claims.Issuer), "make the first --service-account-issuer the issuer relying parties use; tokens get the first one"}
	default:
		return Check{"discovery", Pass, "discovery issuer equals the token's iss: " + disc.Issuer, ""}
	}
}

// issuerJWKS reads /openid/v1/jwks and verifies the minted token raw
// (decoded as tok; nil: none was minted) with it. It returns the key set
// as parsed, for the release checks.
func issuerJWKS(ctx context.Context, cs kubernetes.Interface, tok *jwt.Token, raw string) (Check, *jwt.KeySet) {
	jb, err := cs.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	var ks *jwt.KeySet
	if err == nil {
		ks, err = jwt.ParseJWKS(jb)
	}
	switch {
	case err != nil:
		return Check{"jwks", Fail, "cannot read /openid/v1/jwks: " + text.OneLine(err.Error(), 300), "bind ClusterRole system:service-account-issuer-discovery, or check --service-account-key-file"}, ks
	case tok == nil:
		return Check{"jwks", Skip, fmt.Sprintf("%d keys; no token to check", len(ks.Keys)), ""}, ks
	}
	r := jwt.Verify(raw, ks, jwt.Options{Leeway: time.Minute})
	if r.Valid() {
		return Check{"jwks", Pass, fmt.Sprintf("the JWKS (%d keys) holds kid %s and it verifies a fresh token", len(ks.Keys), r.KeyID), ""}, ks
	}
	return Check{"jwks", Fail, "a fresh token does not verify against the JWKS: " + strings.Join(r.Errors, "; "), "add the public half of --service-account-signing-key-file to --service-account-key-file"}, ks
}

// guardClients are the guard check's clients: cs and dyn, with a
// metadata client and one impersonating kube-apiserver when cfg is known.
func guardClients(cs kubernetes.Interface, dyn dynamic.Interface, cfg *rest.Config) *guard.Cluster {
	c := &guard.Cluster{Client: cs, Dynamic: dyn, AsAPIServerErr: errors.New("no connection settings to impersonate " + guard.APIServerUser + " with")}
	if cfg == nil {
		return c
	}
	if md, err := metadata.NewForConfig(cfg); err == nil {
		c.Metadata = md
	}
	c.AsAPIServer, c.AsAPIServerErr = guard.AsAPIServer(cfg)
	return c
}

// inCluster issuers are only reachable from inside the cluster.
func inCluster(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".svc.cluster.local") || h == "kubernetes.default"
}

func publicDiscovery(ctx context.Context, tok *jwt.Token, o Options) Check {
	name := "public-discovery"
	if tok == nil {
		return Check{name, Skip, "no token, so no issuer to probe", ""}
	}
	iss := tok.Claims.Issuer
	if inCluster(iss) {
		return Check{name, Skip, "issuer " + iss + " is the in-cluster default; relying parties outside the cluster cannot discover it", ""}
	}
	fix := fmt.Sprintf("publish the documents at %s: kubectl bound-token oidc export --out-dir DIR --issuer %s, then serve DIR there over HTTPS", iss, iss)
	if !strings.HasPrefix(iss, "https://") {
		return Check{name, Warn, "issuer " + iss + " is not https: OIDC relying parties will refuse it", fix}
	}
	timeout := o.IssuerTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	c := *hc
	c.Timeout = timeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, ks, err := jwt.FetchDiscovery(ctx, &c, iss)
	if err != nil {
		return Check{name, Warn, "public discovery for " + iss + " failed: " + text.OneLine(err.Error(), 300), fix}
	}
	for _, k := range ks.Keys {
		if k.ID == tok.Header.KeyID {
			return Check{name, Pass, fmt.Sprintf("%s serves discovery and a JWKS with kid %s", iss, k.ID), ""}
		}
	}
	return Check{name, Warn, fmt.Sprintf("%s serves a JWKS without the current kid %s: relying parties will reject new tokens", iss, tok.Header.KeyID), fix}
}

func legacySecrets(ctx context.Context, cs kubernetes.Interface) Check {
	name := "legacy-secrets"
	list, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken)})
	if err != nil {
		return Check{name, Warn, "cannot list token Secrets: " + text.OneLine(err.Error(), 300), "run doctor with list on secrets cluster-wide to count legacy tokens"}
	}
	used, quiet, invalid := 0, 0, 0
	for _, s := range list.Items {
		switch {
		case s.Labels[legacy.LabelInvalidSince] != "":
			invalid++
		case s.Labels[legacy.LabelLastUsed] != "":
			used++
		default:
			quiet++
		}
	}
	// A missing last-used label proves no use only since the tracking
	// start, so "unused" is said with it or not at all.
	since := "use not tracked"
	if tr, err := legacy.ReadTracking(ctx, cs); err == nil && tr.Known() {
		since = "tracked since " + tr.Since.Format("2006-01-02")
	}
	msg := fmt.Sprintf("%d legacy token Secrets: %d with a recorded use, %d with none (%s), %d invalidated", len(list.Items), used, quiet, since, invalid)
	if used+quiet == 0 {
		return Check{name, Pass, msg, ""}
	}
	return Check{name, Warn, msg, "see who uses which and what is safe to change: kubectl bound-token migrate -A -o wide"}
}

// Counters kube-apiserver keeps of legacy token use
// (k8s.io/kubernetes pkg/serviceaccount/metrics.go): per apiserver
// instance, since its start.
var legacyCounters = []string{
	"serviceaccount_legacy_tokens_total",
	"serviceaccount_legacy_auto_token_uses_total",
	"serviceaccount_legacy_manual_token_uses_total",
	"serviceaccount_invalid_legacy_auto_token_uses_total",
	"serviceaccount_stale_tokens_total",
}

// legacyMetrics judges the legacy token counters of kube-apiserver's
// /metrics (b, or err when RBAC or the server refused it).
func legacyMetrics(b []byte, err error) Check {
	name := "legacy-token-metrics"
	if err != nil {
		return Check{name, Skip, "cannot read kube-apiserver /metrics: " + describeMetricsErr(err), `allow "get" on the non-resource URL /metrics to see how often legacy tokens are used`}
	}
	return judgeLegacyMetrics(b)
}

// describeMetricsErr words a failed GET of /metrics. DoRaw keeps no
// message from an error whose body is JSON, as kube-apiserver's 403 is
// (k8s.io/client-go rest/request.go, newUnstructuredResponseError: the
// message is "unknown" unless the body is text), so the code and reason
// say what happened.
func describeMetricsErr(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if s := st.Status(); s.Message == "" || s.Message == "unknown" {
			return fmt.Sprintf("HTTP %d %s", s.Code, s.Reason)
		}
	}
	return text.OneLine(err.Error(), 300)
}

// judgeLegacyMetrics warns when the counters show legacy tokens presented
// to this apiserver: any use at all (serviceaccount_legacy_tokens_total,
// counted by jwtTokenAuthenticator.AuthenticateToken in
// pkg/serviceaccount/jwt.go once a token without audience verified), and
// with its own hint when invalidated auto tokens are still presented.
func judgeLegacyMetrics(b []byte) Check {
	name := "legacy-token-metrics"
	got := ParseCounters(b, legacyCounters)
	if _, ok := got[legacyCounters[0]]; !ok {
		return Check{name, Skip, "this kube-apiserver exports no legacy token counters", ""}
	}
	var parts []string
	for _, c := range legacyCounters {
		if v, ok := got[c]; ok {
			parts = append(parts, fmt.Sprintf("%s %g", strings.TrimPrefix(c, "serviceaccount_"), v))
		}
	}
	msg := strings.Join(parts, ", ") + " (this apiserver instance, since it started)"
	switch {
	case got["serviceaccount_invalid_legacy_auto_token_uses_total"] > 0:
		return Check{name, Warn, msg, "clients present invalidated tokens: kubectl bound-token migrate -A shows them as in-use-failing"}
	case got[legacyCounters[0]] > 0:
		return Check{name, Warn, msg, "legacy tokens are in use: kubectl bound-token migrate -A shows which, and --audit-log who"}
	}
	return Check{name, Pass, msg, ""}
}

// ParseCounters reads the named unlabelled counters from Prometheus text
// exposition.
func ParseCounters(text []byte, names []string) map[string]float64 {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	eachSample(text, func(name, labels string, v float64) {
		if labels == "" && want[name] {
			out[name] = v
		}
	})
	return out
}

// eachSample calls fn with every sample of Prometheus text exposition
// (format 0.0.4, as kube-apiserver's /metrics serves it): the metric name,
// its labels as written between the braces ("" when it has none) and the
// value. Comments and lines that do not parse are skipped. Label values
// may hold spaces and braces, so the label set is scanned, not split.
func eachSample(text []byte, fn func(name, labels string, v float64)) {
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, labels := line, "", ""
		if i := strings.IndexAny(line, "{ \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			end := labelsEnd(rest)
			if end < 0 {
				continue
			}
			labels, rest = rest[1:end], rest[end+1:]
		}
		f := strings.Fields(rest)
		if name == "" || len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			fn(name, labels, v)
		}
	}
}

// labelsEnd is the index of the brace closing the label set that s starts
// with, or -1.
func labelsEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == '}':
			return i
		}
	}
	return -1
}

// labelValue is the value of label key in a label set as eachSample gives
// it (`a="x",b="y"`), unescaped, and whether the set has it.
func labelValue(labels, key string) (string, bool) {
	for labels != "" {
		labels = strings.TrimLeft(labels, ", \t")
		eq := strings.IndexByte(labels, '=')
		if eq < 0 || eq+1 >= len(labels) || labels[eq+1] != '"' {
			return "", false
		}
		k := strings.TrimSpace(labels[:eq])
		var v strings.Builder
		i := eq + 2
		for ; i < len(labels) && labels[i] != '"'; i++ {
			if labels[i] == '\\' && i+1 < len(labels) {
				i++
				if labels[i] == 'n' {
					v.WriteByte('\n')
					continue
				}
			}
			v.WriteByte(labels[i])
		}
		if k == key {
			return v.String(), true
		}
		if i >= len(labels) {
			return "", false
		}
		labels = labels[i+1:]
	}
	return "", false
}

func nodeBinding(gitVersion string) Check {
	v, err := version.ParseGeneric(gitVersion)
	if err != nil {
		return Check{"node-binding", Skip, "cannot parse server version " + gitVersion, ""}
	}
	if v.AtLeast(version.MajorMinor(1, 31)) {
		return Check{"node-binding", Pass, "tokens can be bound to Nodes (ServiceAccountTokenNodeBinding is on by default from 1.31)", ""}
	}
	return Check{"node-binding", Warn, "Kubernetes " + gitVersion + " binds tokens to Nodes only with feature gate ServiceAccountTokenNodeBinding", "enable the gate on kube-apiserver, or bind tokens to Pods or Secrets"}
}

func openShift(ctx context.Context, dyn dynamic.Interface) []Check {
	auth, err := dyn.Resource(openshift.AuthenticationGVR).Get(ctx, openshift.ClusterName, metav1.GetOptions{})
	if err != nil {
		return []Check{{"openshift", Skip, "not OpenShift (no authentications.config.openshift.io/cluster)", ""}}
	}
	iss := openshift.IssuerOf(auth)
	if iss == "" {
		iss = openshift.DefaultIssuer + " (default)"
	}
	out := []Check{{"openshift-issuer", Pass, "spec.serviceAccountIssuer: " + iss, ""}}
	kas, err := dyn.Resource(openshift.KubeAPIServerGVR).Get(ctx, openshift.ClusterName, metav1.GetOptions{})
	if err != nil {
		return append(out, Check{"openshift-rollout", Warn, "cannot read kubeapiservers.operator.openshift.io/cluster: " + text.OneLine(err.Error(), 300), "grant get on kubeapiservers.operator.openshift.io"})
	}
	st, err := openshift.StatusOf(kas)
	if err != nil {
		return append(out, Check{"openshift-rollout", Warn, "cannot read the status of kubeapiservers.operator.openshift.io/cluster: " + text.OneLine(err.Error(), 300), ""})
	}
	var trusted []string
	for _, i := range st.ServiceAccountIssuers {
		switch exp, ok := i.Expires(); {
		case ok:
			trusted = append(trusted, fmt.Sprintf("%s (trusted until %s)", i.Name, exp.UTC().Format(time.RFC3339)))
		case i.ExpirationTime != "":
			trusted = append(trusted, fmt.Sprintf("%s (trusted until %q)", i.Name, i.ExpirationTime))
		default:
			trusted = append(trusted, i.Name+" (active)")
		}
	}
	if len(trusted) > 0 {
		out = append(out, Check{"openshift-trusted-issuers", Pass, strings.Join(trusted, ", "), ""})
	}
	// The same judgement as wait: the condition alone can still call the
	// previous revision done.
	p := openshift.Evaluate(st, openshift.NoRevision)
	switch {
	case p.Done:
		out = append(out, Check{"openshift-rollout", Pass, "kube-apiserver rollout done: " + p.Summary(), ""})
	case p.Failed:
		out = append(out, Check{"openshift-rollout", Fail, "kube-apiserver rollout failed: " + strings.Join(p.Failures, "; "),
			"fix the failing node's installer, or roll back: kubectl bound-token rotate issuer --rollback --from BACKUP"})
	default:
		out = append(out, Check{"openshift-rollout", Warn, "kube-apiserver rollout in progress: " + p.Summary(),
			"run kubectl bound-token wait before restarting workloads"})
	}
	return out
}

func hyperShift(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface) []Check {
	list, err := dyn.Resource(hypershift.HostedClusterGVR).Namespace("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return []Check{{"hypershift", Skip, "no HostedClusters (hostedclusters.hypershift.openshift.io not served)", ""}}
	}
	var out []Check
	for _, hc := range list.Items {
		name := "hypershift " + hc.GetNamespace() + "/" + hc.GetName()
		keyRef := hypershift.SigningKeyName(&hc)
		issuer, _, _ := unstructured.NestedString(hc.Object, "spec", "issuerURL")
		if keyRef == "" {
			out = append(out, Check{name, Pass, "uses the platform's signing key (no spec.serviceAccountSigningKey)", ""})
			continue
		}
		if issuer == "" {
			out = append(out, Check{name, Fail, "spec.serviceAccountSigningKey is set but spec.issuerURL is empty", "set spec.issuerURL when bringing your own signing key"})
			continue
		}
		if issuer == hypershift.DefaultIssuerURL {
			out = append(out, Check{name, Fail, fmt.Sprintf("spec.serviceAccountSigningKey is set but spec.issuerURL is HyperShift's default %s: only in-cluster clients can verify the tokens, and issuerURL cannot be changed", issuer),
				"remove spec.serviceAccountSigningKey, or recreate the HostedCluster with its own spec.issuerURL"})
			continue
		}
		out = append(out, hyperShiftSecret(ctx, cs, name, hc.GetNamespace(), hc.GetName(), keyRef))
	}
	if len(out) == 0 {
		out = append(out, Check{"hypershift", Skip, "no HostedClusters", ""})
	}
	return out
}

// hyperShiftSecret checks the Secret as HyperShift reads it: "key" must be
// a PKCS#1 RSA private key (hypershift.ParseSigningKey), "old-key.pub", if
// any, PEM public keys (appended to the public key kube-apiserver reads),
// and every other public key stored beside them the public half of "key".
// It reports the kids the hosted kube-apiserver trusts.
func hyperShiftSecret(ctx context.Context, cs kubernetes.Interface, name, ns, hcName, secret string) Check {
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{})
	if err != nil {
		return Check{name, Fail, fmt.Sprintf("signing-key Secret %s/%s: %s", ns, secret, text.OneLine(err.Error(), 300)), "create it: kubectl bound-token keys generate --secret " + secret + " -n " + ns + " --format hypershift"}
	}
	rotate := fmt.Sprintf("rotate to a new RSA key: kubectl bound-token rotate hosted-cluster %s -n %s --force", hcName, ns)
	pk, err := jwt.ParsePEM(s.Data["key"])
	if err != nil || len(pk.Keys) != 1 {
		return Check{name, Fail, fmt.Sprintf("Secret %s/%s key \"key\" does not hold one PEM private key", ns, secret), rotate}
	}
	if !isPrivatePEM(s.Data["key"]) {
		return Check{name, Fail, fmt.Sprintf("Secret %s/%s key \"key\" holds a public key, not the private key", ns, secret), rotate}
	}
	if _, err := hypershift.ParseSigningKey(s.Data["key"]); err != nil {
		return Check{name, Fail, fmt.Sprintf("Secret %s/%s key \"key\" (kid %s): %v, so the HostedCluster fails validation (ValidConfiguration False)", ns, secret, pk.Keys[0].ID, err), rotate}
	}
	trusted := []string{pk.Keys[0].ID}
	if b, ok := s.Data["old-key.pub"]; ok {
		old, err := hypershift.ParseOldPublicKeys(b)
		if err != nil {
			return Check{name, Fail, fmt.Sprintf("Secret %s/%s key \"old-key.pub\": %v; HyperShift hands it to kube-apiserver as is", ns, secret, err), "store only PEM public keys there (kubectl bound-token rotate writes them)"}
		}
		for _, k := range old.Keys {
			trusted = append(trusted, k.ID)
		}
	}
	for k, v := range s.Data {
		if k == "key" || k == "old-key.pub" || !strings.HasSuffix(k, ".pub") {
			continue
		}
		pub, err := jwt.ParsePEM(v)
		if err != nil || len(pub.Keys) != 1 {
			return Check{name, Fail, fmt.Sprintf("Secret %s/%s key %q is not a PEM public key", ns, secret, k), "remove it or store the public half of \"key\""}
		}
		if !samePublic(pub.Keys[0].Public, pk.Keys[0].Public) {
			return Check{name, Fail, fmt.Sprintf("Secret %s/%s: public key %q (kid %s) is not the public half of \"key\" (kid %s)", ns, secret, k, pub.Keys[0].ID, pk.Keys[0].ID), "regenerate both halves together: kubectl bound-token keys generate --secret NAME --format hypershift"}
		}
	}
	return Check{name, Pass, fmt.Sprintf("signing key Secret %s/%s holds a PKCS#1 RSA key (kid %s) matching its public keys; trusted kids: %s", ns, secret, pk.Keys[0].ID, strings.Join(trusted, ", ")), ""}
}

func isPrivatePEM(b []byte) bool {
	blk, _ := pem.Decode(b)
	return blk != nil && strings.Contains(blk.Type, "PRIVATE KEY")
}

func samePublic(a, b crypto.PublicKey) bool {
	da, err1 := x509.MarshalPKIXPublicKey(a)
	db, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && string(da) == string(db)
}

// Failed reports whether any check failed.
func Failed(cs []Check) bool {
	for _, c := range cs {
		if c.Status == Fail {
			return true
		}
	}
	return false
}
