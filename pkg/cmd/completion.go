package cmd

// Shell completion of cluster object names and kubeconfig entries: what
// k8s.io/kubectl/pkg/util/completion offers (CompGetResource,
// ResourceNameCompletionFunc, ListContextsInConfig, ListClustersInConfig,
// ListUsersInConfig in completion.go), written here because that package
// links kubectl's `get` and `api-resources` commands, whose package
// initialisation (tens of milliseconds, megabytes of allocations) Go runs
// in every process, `version` and `verify` included.

import (
	"context"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
)

// completable is a kind of object whose names completion offers.
type completable struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

var (
	namespaceNames      = completable{gvr: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}}
	serviceAccountNames = completable{gvr: schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, namespaced: true}
	secretNames         = completable{gvr: schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, namespaced: true}
	hostedClusterNames  = completable{gvr: hypershift.HostedClusterGVR, namespaced: true}
)

// completionChunk is kubectl get's default --chunk-size
// (k8s.io/kubectl/pkg/cmd/get/get.go, NewGetOptions), which
// CompGetResource's `get` pages with.
const completionChunk = 500

// completeNames completes a flag with the names of objects of kind c that
// start with what is typed, in the namespace of -n or the kubeconfig.
func completeNames(f cmdutil.Factory, c completable) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return objectNames(f, c, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFirstArgNames completes the first argument only, as kubectl's
// ResourceNameCompletionFunc does.
func completeFirstArgNames(f cmdutil.Factory, c completable) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return objectNames(f, c, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// objectNames lists the names in server order, nil on any error (a
// completion has nowhere to report one), as CompGetResource does. It asks
// for metadata only (PartialObjectMetadataList): completing Secret names
// does not fetch their data, which `kubectl get` did.
func objectNames(f cmdutil.Factory, c completable, toComplete string) []string {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil
	}
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil
	}
	var lister metadata.ResourceInterface = client.Resource(c.gvr)
	if c.namespaced {
		ns, _, err := f.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil
		}
		lister = client.Resource(c.gvr).Namespace(ns)
	}
	var names []string
	opts := metav1.ListOptions{Limit: completionChunk}
	for {
		list, err := lister.List(context.Background(), opts)
		if err != nil {
			return nil
		}
		for _, o := range list.Items {
			if strings.HasPrefix(o.Name, toComplete) {
				names = append(names, o.Name)
			}
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			return names
		}
	}
}

// completeKubeconfig completes a flag with the names of one section of the
// merged kubeconfig (contexts, clusters or users), sorted.
func completeKubeconfig[V any](f cmdutil.Factory, section func(*clientcmdapi.Config) map[string]V) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		cfg, err := f.ToRawKubeConfigLoader().RawConfig()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for name := range section(&cfg) {
			if strings.HasPrefix(name, toComplete) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func kubeconfigContexts(c *clientcmdapi.Config) map[string]*clientcmdapi.Context { return c.Contexts }
func kubeconfigClusters(c *clientcmdapi.Config) map[string]*clientcmdapi.Cluster { return c.Clusters }
func kubeconfigUsers(c *clientcmdapi.Config) map[string]*clientcmdapi.AuthInfo   { return c.AuthInfos }
