package cmd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/rest/fake"
	cmdtesting "k8s.io/kubectl/pkg/cmd/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
)

// testFactory is kubectl's cmdtesting factory whose dynamic client is a
// fakeDynamic.
type testFactory struct {
	*cmdtesting.TestFactory
	dyn *fakeDynamic
}

func (f *testFactory) DynamicClient() (dynamic.Interface, error) { return f.dyn, nil }

// newAPITestFactory is kubectl's cmdtesting factory with the namespace ns, the
// dynamic fake dyn (nil: an empty one) and a typed clientset served by api
// (nil: every request is a 404), so that commands run their real Complete
// without a cluster.
func newAPITestFactory(t *testing.T, ns string, dyn *fakeDynamic, api http.Handler) *testFactory {
	t.Helper()
	tf := cmdtesting.NewTestFactory().WithNamespace(ns)
	t.Cleanup(tf.Cleanup)
	if api == nil {
		api = http.NotFoundHandler()
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	// A fake.RESTClient without its own client leaves every group on
	// http.DefaultClient, against the server, in JSON (not protobuf) so that
	// api can read what it is sent.
	tf.Client = &fake.RESTClient{NegotiatedSerializer: resource.UnstructuredPlusDefaultContentConfig().NegotiatedSerializer}
	tf.ClientConfigVal = &rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}}
	if dyn == nil {
		dyn = newDynamic()
	}
	return &testFactory{tf, dyn}
}

// fakeDynamic is client-go's dynamic fake, which drops PatchOptions, plus
// what a server does with dryRun=All: the patch is recorded ("PATCH" with
// " dryRun=All" appended), checked for its object and not stored.
type fakeDynamic struct {
	*dynamicfake.FakeDynamicClient
	patches []string
}

// newDynamic is a fakeDynamic that can list the OpenShift and HyperShift
// resources the commands read.
func newDynamic(objs ...runtime.Object) *fakeDynamic {
	return &fakeDynamic{FakeDynamicClient: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		openshift.AuthenticationGVR: "AuthenticationList",
		openshift.KubeAPIServerGVR:  "KubeAPIServerList",
		hypershift.HostedClusterGVR: "HostedClusterList",
	}, objs...)}
}

func (d *fakeDynamic) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return &fakeResource{d.FakeDynamicClient.Resource(gvr), d}
}

type fakeResource struct {
	dynamic.NamespaceableResourceInterface
	d *fakeDynamic
}

func (r *fakeResource) Namespace(ns string) dynamic.ResourceInterface {
	return &fakeNamespaced{r.NamespaceableResourceInterface.Namespace(ns), r.d}
}

func (r *fakeResource) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*unstructured.Unstructured, error) {
	return r.d.patch(ctx, r.NamespaceableResourceInterface, name, pt, data, opts, sub...)
}

type fakeNamespaced struct {
	dynamic.ResourceInterface
	d *fakeDynamic
}

func (r *fakeNamespaced) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*unstructured.Unstructured, error) {
	return r.d.patch(ctx, r.ResourceInterface, name, pt, data, opts, sub...)
}

func (d *fakeDynamic) patch(ctx context.Context, ri dynamic.ResourceInterface, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*unstructured.Unstructured, error) {
	if len(opts.DryRun) == 0 {
		d.patches = append(d.patches, string(data))
		return ri.Patch(ctx, name, pt, data, opts, sub...)
	}
	d.patches = append(d.patches, string(data)+" dryRun="+strings.Join(opts.DryRun, ","))
	return ri.Get(ctx, name, metav1.GetOptions{}, sub...)
}

// cmdRun says what run runs. Its zero value is the plugin's root command,
// offline: --kubeconfig names a file that does not exist (a later
// --kubeconfig in args wins).
type cmdRun struct {
	// cmd builds the command under test, which run adds to a root set up
	// like the plugin's (display name, flag errors as usage errors), so args
	// start with its name. nil: the plugin's root command itself.
	cmd func(cmdutil.Factory, genericiooptions.IOStreams) *cobra.Command
	// f is the factory cmd gets; nil: newTestFactory(t).
	f cmdutil.Factory
	// unread, if set, gets what the command left of stdin.
	unread *string
}

// run runs args as main does: on stdin, through Execute (one-line errors,
// exit codes), and returns stdout, stderr and the exit code. It is the one
// way the tests of this package run a command.
func run(t *testing.T, with cmdRun, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(stdin)
	var root *cobra.Command
	if with.cmd == nil {
		root = NewCmdBoundToken(streams)
		args = append([]string{"--kubeconfig", filepath.Join(t.TempDir(), "none")}, args...)
	} else {
		f := with.f
		if f == nil {
			f = newTestFactory(t)
		}
		root = &cobra.Command{Use: "bound-token", SilenceUsage: true, SilenceErrors: true,
			Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl bound-token"}}
		root.SetIn(streams.In)
		root.SetOut(streams.Out)
		root.SetErr(streams.ErrOut)
		root.SetFlagErrorFunc(flagError)
		root.AddCommand(with.cmd(f, streams))
	}
	root.SetArgs(args)
	code = Execute(root, errOut)
	if with.unread != nil {
		*with.unread = in.String()
	}
	return out.String(), errOut.String(), code
}

// fakes are what a command's options get instead of the factory's clients
// and the real clock; its methods build those commands for cmdRun.cmd.
type fakes struct {
	client   kubernetes.Interface
	metadata metadata.Interface
	now      time.Time // zero: the real clock
}

func (x fakes) clock() func() time.Time {
	if x.now.IsZero() {
		return time.Now
	}
	return func() time.Time { return x.now }
}

func (x fakes) migrate(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	o := NewMigrateOptions(s)
	o.Client, o.Metadata, o.Now = x.client, x.metadata, x.clock()
	return newCmdMigrate(f, o)
}

func (x fakes) restore(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	o := NewRestoreOptions(s)
	o.Client = x.client
	return newCmdRestore(f, o)
}

func (x fakes) switchCmd(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	o := NewSwitchOptions(s)
	o.Client = x.client
	return newCmdSwitch(f, o)
}

// guard is "guard" with only "guard watch", whose options get x.
func (x fakes) guard(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
	o := NewGuardWatchOptions(s)
	o.Client, o.Metadata = x.client, x.metadata
	guard := &cobra.Command{Use: "guard"}
	guard.AddCommand(newCmdGuardWatchOptions(f, o))
	return guard
}

// newTestFactory is kubectl's test factory (k8s.io/kubectl/pkg/cmd/testing)
// in namespace "app": no kubeconfig, no cluster. Its REST client fails the
// test on any request; a test that expects some sets tf.Client itself.
func newTestFactory(t *testing.T) *cmdtesting.TestFactory {
	t.Helper()
	tf := cmdtesting.NewTestFactory().WithNamespace("app")
	t.Cleanup(tf.Cleanup)
	tf.Client = &fake.RESTClient{Client: fake.CreateHTTPClient(func(req *http.Request) (*http.Response, error) {
		t.Errorf("unexpected request %s %s", req.Method, req.URL.Path)
		return &http.Response{StatusCode: http.StatusInternalServerError, Body: io.NopCloser(strings.NewReader(""))}, nil
	})}
	return tf
}

// lines splits s into lines without the last empty one.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func genericiooptionsDiscard() genericiooptions.IOStreams {
	s, _, _, _ := genericiooptions.NewTestIOStreams()
	return s
}
