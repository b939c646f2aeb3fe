package cmd

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestFleetRefusesBadFlagsBeforeTouchingAnything(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--all-contexts", "--apply", "--yes"}, "--apply over many clusters needs --cluster-wave-watch"},
		{[]string{"migrate", "--all-contexts", "--apply", "--yes", "--cluster-wave-watch", "1m", "--mode", "delete"}, "cluster waves invalidate"},
		{[]string{"migrate", "--all-contexts", "--apply", "--yes", "--cluster-wave-watch", "1m", "--dry-run=server"}, "--dry-run over many clusters"},
		{[]string{"migrate", "--all-contexts", "--apply", "--yes", "--cluster-wave-watch", "1m", "--revoke"}, "--revoke over many clusters"},
		{[]string{"migrate", "--all-contexts", "--apply", "--yes", "--cluster-wave-watch", "1m", "--cluster-wave-growth", "0"}, "--cluster-wave-growth 0"},
		{[]string{"migrate", "--all-contexts", "--apply", "--yes", "--wave-size", "2"}, "--wave-size cannot be used with --contexts"},
		{[]string{"migrate", "--apply", "--yes", "--cluster-wave-watch", "1m"}, "only make sense with --contexts or --all-contexts and --apply"},
		{[]string{"migrate", "--contexts", "a", "--audit-log", "x.log"}, "--audit-log cannot be used"},
		{[]string{"migrate", "--all-contexts", "--context", "a"}, "--context names one cluster"},
		{[]string{"migrate", "--all-contexts", "--contexts", "a"}, "not both"},
		{[]string{"migrate", "--context-selector", "prod"}, "only makes sense with --contexts or --all-contexts"},
		{[]string{"migrate", "--all-contexts", "--parallel", "0"}, "must be positive"},
		{[]string{"migrate", "--all-contexts", "-o", "name"}, `--output "name" is not supported with --contexts`},
		{[]string{"switch", "--all-contexts", "--apply", "--yes"}, "--apply cannot be used"},
		{[]string{"switch", "--all-contexts", "-o", "name"}, `--output "name" is not supported with --contexts`},
		{[]string{"switch", "--contexts", "a,b", "--server", "https://x"}, "--server names one cluster"},
		{[]string{"doctor", "--all-contexts", "--context", "a"}, "--context names one cluster"},
		{[]string{"doctor", "--parallel", "3"}, "only makes sense with"},
		{[]string{"migrate", "--all-contexts", "--as-group", "readers"}, "--as-group and --as-uid need --as"},
	} {
		_, stderr, code := run(t, cmdRun{}, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", c.args, code, stderr, c.want)
		}
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// unreachableFleet writes a kubeconfig with contexts east and west, whose
// servers do not answer.
func unreachableFleet(t *testing.T) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	for _, n := range []string{"east", "west"} {
		cfg.Clusters[n] = &clientcmdapi.Cluster{Server: "https://" + closedPort(t)}
		cfg.AuthInfos[n] = &clientcmdapi.AuthInfo{Token: "x"}
		cfg.Contexts[n] = &clientcmdapi.Context{Cluster: n, AuthInfo: n}
	}
	path := filepath.Join(t.TempDir(), "config")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// A fleet where no cluster answers exits 2, names every context once, and
// -o json is one document with a section each.
func TestFleetNothingCheckedExits2WithOneDocument(t *testing.T) {
	path := unreachableFleet(t)
	for _, command := range []string{"migrate", "doctor", "switch"} {
		out, errOut, code := run(t, cmdRun{}, "", "--kubeconfig", path, command, "--all-contexts", "-o", "json")
		if code != ExitUsage {
			t.Errorf("%s: exit %d, want 2; stderr %s", command, code, errOut)
		}
		var doc struct {
			Kind, APIVersion, Command string
			Clusters                  []struct{ Context, Reason, Error string }
			Summary                   struct{ FailedClusters []string }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%s: not one JSON document: %v\n%s", command, err, out)
		}
		if doc.Kind != "FleetReport" || doc.Command != command || len(doc.Clusters) != 2 || doc.Clusters[0].Reason != "Unreachable" ||
			strings.Join(doc.Summary.FailedClusters, ",") != "east,west" {
			t.Errorf("%s: %s", command, out)
		}
		for _, n := range []string{"east", "west"} {
			if strings.Count(errOut, "error: context "+n+" ") != 1 {
				t.Errorf("%s: stderr does not name %s once: %s", command, n, errOut)
			}
		}
	}
	_ = os.Remove(path)
}

// The fleet prints through the command's own -o printer, built in
// Complete: jsonpath and go-template read the FleetReport too.
func TestFleetPrintsThroughTheCommandsPrinter(t *testing.T) {
	path := unreachableFleet(t)
	for _, command := range []string{"migrate", "doctor", "switch"} {
		for _, o := range []string{"jsonpath={.kind} {.summary.checked}", "go-template={{.kind}} {{.summary.checked}}"} {
			out, errOut, code := run(t, cmdRun{}, "", "--kubeconfig", path, command, "--all-contexts", "-o", o)
			if code != ExitUsage || out != "FleetReport 0" {
				t.Errorf("%s -o %s: exit %d, stdout %q; want exit 2 and %q; stderr %s", command, o, code, out, "FleetReport 0", errOut)
			}
		}
	}
}
