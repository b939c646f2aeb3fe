package cmd

import (
	"strings"
	"testing"
	"time"
)

func TestRotateValidate(t *testing.T) {
	base := func() *RotateOptions {
		return &RotateOptions{Restart: "none", Timeout: time.Minute}
	}
	for _, tc := range []struct {
		name string
		set  func(*RotateOptions)
		want string // "" = valid
	}{
		{"issuer", func(o *RotateOptions) { o.Issuer = "https://oidc.example.com" }, ""},
		{"nothing", func(o *RotateOptions) {}, "give --issuer URL, --rollback --from FILE, or --hosted-cluster NAME"},
		{"http", func(o *RotateOptions) { o.Issuer = "http://oidc.example.com" }, "--allow-non-https"},
		{"http allowed", func(o *RotateOptions) { o.Issuer = "http://oidc.example.com"; o.AllowNonHTTPS = true }, ""},
		{"rollback without from", func(o *RotateOptions) { o.Rollback = true }, "--rollback needs --from"},
		{"from without rollback", func(o *RotateOptions) { o.From = "x"; o.Issuer = "https://a.example.com" }, "--from is only used with --rollback"},
		{"rollback and issuer", func(o *RotateOptions) { o.Rollback, o.From, o.Issuer = true, "x", "https://a.example.com" }, "not both"},
		{"bad restart", func(o *RotateOptions) { o.Issuer, o.Restart = "https://a.example.com", "nodes" }, `--restart "nodes" is not supported`},
		{"pods without yes", func(o *RotateOptions) { o.Issuer, o.Restart = "https://a.example.com", "pods" }, "add --yes"},
		{"pods with yes", func(o *RotateOptions) { o.Issuer, o.Restart, o.Yes = "https://a.example.com", "pods", true }, ""},
		{"hosted without key generates rsa2048", func(o *RotateOptions) { o.HostedCluster = "prod" }, ""},
		{"hosted with both", func(o *RotateOptions) { o.HostedCluster, o.KeyFile, o.Generate = "prod", "k", "rsa2048" }, "not both"},
		{"hosted ec256", func(o *RotateOptions) { o.HostedCluster, o.Generate = "prod", "ec256" }, "HyperShift reads only RSA signing keys"},
		{"hosted negative keep", func(o *RotateOptions) { o.HostedCluster, o.KeepOldKeysFor = "prod", -time.Hour }, "--keep-old-keys-for must not be negative"},
		{"hosted with restart", func(o *RotateOptions) { o.HostedCluster, o.Generate, o.Restart = "prod", "rsa2048", "workloads" }, "are for OpenShift's issuer"},
		{"force without hosted", func(o *RotateOptions) { o.Issuer, o.Force = "https://a.example.com", true }, "need --hosted-cluster"},
		{"key without hosted", func(o *RotateOptions) { o.Issuer, o.Generate = "https://a.example.com", "ec256" }, "need --hosted-cluster"},
		{"bad output", func(o *RotateOptions) { o.Issuer, o.Output = "https://a.example.com", "wide" }, "use json or yaml"},
	} {
		o := base()
		tc.set(o)
		err := o.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestRotateAndWaitFlagErrorsAreUsageErrors(t *testing.T) {
	if _, stderr, code := runCmd(t, "", "wait", "--since-revision", "x"); code != ExitUsage || !strings.Contains(stderr, "since-revision") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCmd(t, "", "rotate", "extra-arg"); code != ExitUsage || !strings.Contains(stderr, "unknown command") && !strings.Contains(stderr, "accepts 0 arg") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestRotateCompletesFlags(t *testing.T) {
	out, _, _ := runCmd(t, "", "__complete", "rotate", "--restart", "")
	for _, m := range []string{"none", "workloads", "pods"} {
		if !strings.Contains(out, m+"\n") {
			t.Errorf("completion lacks %s:\n%s", m, out)
		}
	}
	out, _, _ = runCmd(t, "", "__complete", "rotate", "--generate", "")
	// HyperShift reads only RSA keys: ec256 is not offered.
	if !strings.Contains(out, "rsa2048\n") || strings.Contains(out, "ec256") {
		t.Errorf("--generate completion:\n%s", out)
	}
}
