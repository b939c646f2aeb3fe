package hypershift

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

func writeKey(t *testing.T, pem []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(f, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Keys HyperShift cannot read (x509.ParsePKCS1PrivateKey) are refused before
// anything is written: --generate ec256, an EC key file (SEC1 or PKCS#8),
// and for `keys generate --format hypershift` --type ec256 and --pkcs8.
func TestRefusesKeysHyperShiftCannotRead(t *testing.T) {
	h := newHostedCluster(t, "https://oidc.example.com/prod", nil)
	before := h.get(t).GetResourceVersion()
	secrets := strings.Join(h.secrets(t), ",")
	ec, _ := keys.Generate("ec256", false)
	ec8, _ := keys.Generate("ec256", true)
	for _, args := range [][]string{
		{"rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--generate", "ec256"},
		{"rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--key", writeKey(t, ec.PrivatePEM)},
		{"rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--key", writeKey(t, ec8.PrivatePEM)},
		{"keys", "generate", "--secret", "new-key", "-n", h.ns, "--format", "hypershift", "--type", "ec256"},
		{"keys", "generate", "--secret", "new-key", "-n", h.ns, "--format", "hypershift", "--pkcs8"},
	} {
		r := run(args...).Must(t, 2, "HyperShift reads only RSA")
		if n := strings.Count(strings.TrimSpace(r.Stderr), "\n"); n != 0 || r.Stdout != "" {
			t.Errorf("%v: want one line on stderr, nothing on stdout:\n%s%s", args, r.Stdout, r.Stderr)
		}
		if strings.Contains(r.Stderr, "PRIVATE KEY-----") {
			t.Errorf("%v: the key is in the error", args)
		}
	}
	if got := strings.Join(h.secrets(t), ","); got != secrets {
		t.Errorf("Secrets %s, were %s", got, secrets)
	}
	if rv := h.get(t).GetResourceVersion(); rv != before {
		t.Errorf("the HostedCluster changed (resourceVersion %s, was %s)", rv, before)
	}
}

// A PKCS#8 RSA key (what `openssl genpkey` writes) is stored as PKCS#1; the
// simulated HyperShift accepts it; rotate returns 0 only once the
// kube-apiserver Deployment rolled out a newer generation on kwok nodes, and
// it followed both with watches, not polling.
func TestPKCS8RSAKeyIsConvertedAndTheRolloutFollowed(t *testing.T) {
	h := newHostedCluster(t, "https://oidc.example.com/prod", nil)
	h.sim.RolloutDelay = 2 * time.Second
	gen := h.deployment(t).Generation
	p8, _ := keys.Generate("rsa2048", true)
	start := time.Now()
	r := run("rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--key", writeKey(t, p8.PrivatePEM), "--timeout", "2m").
		Must(t, 0, "HyperShift accepted the key and deployment "+h.cp+"/kube-apiserver rolled out", "old-key.pub keeps trusting kids "+h.old.KeyID)
	end := time.Now()
	t.Logf("rotate took %s", r.Took)
	if strings.TrimSpace(r.Stdout) != p8.KeyID {
		t.Fatalf("printed %q, want kid %s", r.Stdout, p8.KeyID)
	}
	// Rolled out at the moment rotate returned.
	d := h.deployment(t)
	msg, done, err := cluster.RolloutStatus(context.Background(), "Deployment", h.cp, hypershift.KASDeployment)
	if err != nil || !done || d.Generation <= gen || d.Status.ObservedGeneration != d.Generation || d.Status.UpdatedReplicas != 2 || d.Status.AvailableReplicas != 2 {
		t.Fatalf("rotate returned before the rollout: generation %d (was %d), status %+v, %q %v", d.Generation, gen, d.Status, msg, err)
	}
	hc := h.get(t)
	if c := hypershift.GetCondition(hc, hypershift.ValidConfiguration); c == nil || c.Status != "True" || c.ObservedGeneration != hc.GetGeneration() {
		t.Fatalf("ValidConfiguration %+v at generation %d", c, hc.GetGeneration())
	}
	s, err := cluster.Client.CoreV1().Secrets(h.ns).Get(context.Background(), hypershift.SigningKeyName(hc), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(s.Data["key"]), "-----BEGIN RSA PRIVATE KEY-----") {
		t.Fatalf("stored key is not PKCS#1: %.40q", s.Data["key"])
	}
	if ks, err := jwt.ParsePEM(s.Data["key"]); err != nil || ks.Keys[0].ID != p8.KeyID {
		t.Fatalf("stored key kid: %v", err)
	}
	// Watches, not polling: in the audit log, rotate's own requests
	// (not the simulation's) include a watch of each object and few reads.
	counts := auditCounts(t, start, end)
	for _, k := range []string{"watch hostedclusters", "watch deployments"} {
		if counts[k] == 0 {
			t.Errorf("rotate did not %s: %v", k, counts)
		}
	}
	if reads := counts["get hostedclusters"] + counts["list hostedclusters"] + counts["get deployments"] + counts["list deployments"]; reads > 8 {
		t.Errorf("rotate read the objects %d times in %s: polling? %v", reads, end.Sub(start), counts)
	}
}

// auditCounts counts "verb resource" of this test binary's requests (client-go's
// default user agent starts with the program's name; the simulation has its
// own, controllers theirs) between start and end, while only rotate ran.
func auditCounts(t *testing.T, start, end time.Time) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range cluster.OwnRequests(t, start, end) {
		if r.Resource == "hostedclusters" || r.Resource == "deployments" {
			out[r.Verb+" "+r.Resource]++
		}
	}
	return out
}

// HyperShift rejecting the new key (ValidConfiguration False for the
// patched generation) ends rotate at once with exit 1, the condition's
// message, and what was changed and how to undo it.
func TestRejectedKeyFailsFast(t *testing.T) {
	h := newHostedCluster(t, "https://oidc.example.com/prod", nil)
	h.sim.RejectNext.Store(true)
	r := run("rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--timeout", "30s").
		Must(t, 1, "ValidConfiguration=False: invalid service account signing key: cannot decode private key in secret prod-sa-signing-key-",
			"the patch was made: spec.serviceAccountSigningKey points at Secret prod-sa-signing-key-",
			"roll back with: kubectl patch hostedcluster prod -n "+h.ns+` --type merge -p '{"spec":{"serviceAccountSigningKey":{"name":"sa-key"}}}'`)
	if r.Took > 20*time.Second {
		t.Errorf("took %s to report the rejection", r.Took)
	}
	t.Logf("rotate took %s: %s", r.Took, r.Stderr)
}

// ValidConfiguration already False (an EC key HyperShift cannot read):
// refused with the condition's message, nothing written; --force rotates
// to an RSA key, which HyperShift then accepts.
func TestRefusedWhenAlreadyInvalid(t *testing.T) {
	ec, _ := keys.Generate("ec256", false)
	h := newHostedCluster(t, "https://oidc.example.com/prod", ec.PrivatePEM)
	hc := h.get(t)
	if c := hypershift.GetCondition(hc, hypershift.ValidConfiguration); c == nil || c.Status != "False" {
		t.Fatalf("the simulation accepted an EC key: %+v", c)
	}
	secrets := strings.Join(h.secrets(t), ",")
	r := run("rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns).
		Must(t, 1, "already has ValidConfiguration=False (invalid service account signing key: cannot decode private key in secret sa-key", "add --force")
	if strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("want one line:\n%s", r.Stderr)
	}
	if got := strings.Join(h.secrets(t), ","); got != secrets || h.get(t).GetResourceVersion() != hc.GetResourceVersion() {
		t.Fatalf("something was written: Secrets %s (were %s)", got, secrets)
	}
	run("rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--force", "--timeout", "2m").Must(t, 0, "HyperShift accepted the key")
}

// Two rotations in a row: the second Secret's old-key.pub holds both
// earlier public keys, recorded in the annotation with the day after which
// each may be dropped; with --keep-old-keys-for 0 only the previous one.
func TestTwoRotationsKeepEveryTrustedKey(t *testing.T) {
	h := newHostedCluster(t, "https://oidc.example.com/prod", nil)
	ctx := context.Background()
	k1 := strings.TrimSpace(run("rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--timeout", "2m").Must(t, 0).Stdout)
	r2 := run("rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--timeout", "2m").Must(t, 0, "old-key.pub keeps trusting kids "+k1+" (until ", h.old.KeyID+" (until ")
	k2 := strings.TrimSpace(r2.Stdout)
	s2, err := cluster.Client.CoreV1().Secrets(h.ns).Get(ctx, hypershift.SigningKeyName(h.get(t)), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := hypershift.ParseOldPublicKeys(s2.Data["old-key.pub"])
	if err != nil || len(pub.Keys) != 2 || pub.Keys[0].ID != k1 || pub.Keys[1].ID != h.old.KeyID {
		t.Fatalf("second Secret's old-key.pub: %v %v, want %s then %s", pub, err, k1, h.old.KeyID)
	}
	rec := hypershift.ParseOldKeys(s2.Annotations)
	year := time.Now().Add(hypershift.DefaultKeepOldKeysFor).UTC().Format(time.DateOnly)
	if rec[k1].DropAfter != year || rec[h.old.KeyID].DropAfter != year {
		t.Fatalf("annotation %s: want both dropped after %s", s2.Annotations[hypershift.OldKeysAnnotation], year)
	}

	r3 := run("rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--keep-old-keys-for", "0", "--timeout", "2m").
		Must(t, 0, "no longer trusted (retired more than 0s ago): kids ")
	s3, _ := cluster.Client.CoreV1().Secrets(h.ns).Get(ctx, hypershift.SigningKeyName(h.get(t)), metav1.GetOptions{})
	pub, err = hypershift.ParseOldPublicKeys(s3.Data["old-key.pub"])
	if err != nil || len(pub.Keys) != 1 || pub.Keys[0].ID != k2 {
		t.Fatalf("with --keep-old-keys-for 0 old-key.pub holds %v (%v), want only %s\n%s", pub, err, k2, r3.Stderr)
	}
}
