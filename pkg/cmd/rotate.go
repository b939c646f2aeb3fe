package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
	"github.com/bound-token/kubectl-bound-token/pkg/restart"
)

var (
	rotateLong = templates.LongDesc(`
		Change OpenShift's service-account issuer, or rotate a HyperShift HostedCluster's
		signing key.

		OpenShift (--issuer): validates the URL, shows the current and the new issuer,
		backs up authentications.config.openshift.io/cluster to a 0600 file (--backup),
		records latestAvailableRevision, patches spec.serviceAccountIssuer (only if the
		object did not change meanwhile), then waits for the kube-apiserver rollout like
		'wait --since-revision' and prints until when the previous issuer stays trusted.
		A second rollout follows when the operator prunes it (24h later). Refused when
		10 issuers are already trusted (the operator's limit). '--rollback --from FILE'
		restores the issuer from a backup.

		Tokens held by running pods keep the old issuer until the pods restart:
		'--restart workloads' restarts Deployments, StatefulSets and DaemonSets as
		'kubectl rollout restart' does, namespace by namespace, skipping openshift-* and
		kube-* unless --restart-system; '--restart pods' deletes every pod (interrupts
		service; needs --yes).

		HyperShift (--hosted-cluster): creates a new Secret with the private key under
		"key" and, under "old-key.pub", the previous public key and the earlier ones the
		current Secret carried while they are inside --keep-old-keys-for (default one
		year, the longest lifetime of a kubelet-projected token); points
		spec.serviceAccountSigningKey at it and prints the new kid. The old Secret is
		kept. HyperShift reads only RSA keys in PKCS#1 form ("RSA PRIVATE KEY"): a
		PKCS#8 RSA key is converted, EC keys are refused; without --key or --generate
		an rsa2048 key is generated. Refused when spec.issuerURL is HyperShift's default
		https://kubernetes.default.svc (immutable; only in-cluster clients could verify
		the tokens) or when ValidConfiguration is already False (unless --force). Then
		it watches until HyperShift reports ValidConfiguration True for the change and
		Deployment kube-apiserver in the control-plane namespace NAMESPACE-NAME rolled
		out a new generation (as 'kubectl rollout status' judges it); --wait=false
		stops after the patch.

		Every API call is repeated on transient errors. If a HyperShift rotation stops
		after creating the new Secret, running the same command again (same key, same
		--secret-name) takes that Secret over and finishes.

		Exit codes (OpenShift): 0 done, 1 refused, a change or restart failed, or the
		rollout failed, 2 timeout, bad flags or input, not OpenShift/HyperShift.
		Exit codes (HyperShift): 0 done and rolled out, 1 refused (the cluster's state),
		rejected by HyperShift, failed, or not confirmed within --timeout (the message
		says whether the patch was made), 2 bad flags or input, not HyperShift: nothing
		was changed.`)

	rotateExample = templates.Examples(`
		# Show what changing the issuer would do, without changing anything
		kubectl bound-token rotate --issuer https://oidc.example.com/cluster-a --dry-run

		# Change the issuer, wait for the rollout, then restart workloads
		kubectl bound-token rotate --issuer https://oidc.example.com/cluster-a --restart workloads --yes

		# Undo it from the backup written by the previous command
		kubectl bound-token rotate --rollback --from authentication-cluster-20261123T080000Z.yaml --yes

		# Rotate a HostedCluster's signing key to a new RSA key and follow the rollout
		kubectl bound-token rotate --hosted-cluster prod -n clusters

		# ... with a key you made yourself (RSA; PKCS#8 is converted to PKCS#1)
		kubectl bound-token rotate --hosted-cluster prod -n clusters --key ./sa-keys/sa.key

		# ... keeping retired keys trusted for 90 days instead of a year
		kubectl bound-token rotate --hosted-cluster prod -n clusters --keep-old-keys-for 2160h`)
)

// Restart modes.
var restartModes = []string{"none", "workloads", "pods"}

// RotateOptions holds what `rotate` needs.
type RotateOptions struct {
	Issuer        string
	AllowNonHTTPS bool
	Backup        string
	Rollback      bool
	From          string
	Timeout       time.Duration

	Restart           string
	RestartSystem     bool
	RestartNamespaces []string
	RestartPause      time.Duration

	HostedCluster  string
	Namespace      string
	KeyFile        string
	Generate       string
	SecretName     string
	Force          bool
	KeepOldKeysFor time.Duration
	Wait           bool

	Yes    bool
	DryRun bool
	Output string

	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	Now     func() time.Time
	genericiooptions.IOStreams
}

func NewCmdRotate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RotateOptions{Restart: "none", Timeout: 30 * time.Minute, RestartPause: 5 * time.Second, Now: time.Now, IOStreams: streams,
		KeepOldKeysFor: hypershift.DefaultKeepOldKeysFor, Wait: true}
	cmd := &cobra.Command{
		Use:                   "rotate (--issuer URL | --rollback --from FILE | --hosted-cluster NAME)",
		DisableFlagsInUseLine: true,
		Short:                 "Change the OpenShift issuer or rotate a HyperShift signing key, and follow the rollout",
		Long:                  rotateLong,
		Example:               rotateExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(f); err != nil {
				return usageError(err)
			}
			if err := o.Validate(); err != nil {
				return usageError(err)
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Issuer, "issuer", "", "New spec.serviceAccountIssuer (https URL, no query or fragment).")
	fl.BoolVar(&o.AllowNonHTTPS, "allow-non-https", false, "Accept a non-https issuer (OpenShift then disables issuer discovery).")
	fl.StringVar(&o.Backup, "backup", "", "File for the backup of authentications.config.openshift.io/cluster (default authentication-cluster-TIME.yaml). Never overwritten.")
	fl.BoolVar(&o.Rollback, "rollback", false, "Restore the issuer from a backup (--from).")
	fl.StringVar(&o.From, "from", "", "Backup file written by an earlier rotate, for --rollback.")
	fl.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the kube-apiserver rollout (exit 2 after on OpenShift, 1 on HyperShift).")
	fl.StringVar(&o.Restart, "restart", o.Restart, "After the rollout: none, workloads (rolling restart) or pods (delete every pod; needs --yes).")
	fl.BoolVar(&o.RestartSystem, "restart-system", false, "Also restart in openshift-* and kube-* namespaces.")
	fl.StringArrayVar(&o.RestartNamespaces, "restart-namespace", nil, "Restart only in this namespace; repeat for several. Default: every namespace.")
	fl.DurationVar(&o.RestartPause, "restart-pause", o.RestartPause, "Pause between namespaces when restarting.")
	fl.StringVar(&o.HostedCluster, "hosted-cluster", "", "HyperShift: rotate this HostedCluster's signing key (namespace from -n).")
	fl.StringVar(&o.KeyFile, "key", "", "HyperShift: PEM RSA private key to use (PKCS#1, or PKCS#8 which is converted).")
	fl.StringVar(&o.Generate, "generate", "", "HyperShift: generate the new key: "+strings.Join(hyperShiftKeyTypes, ", ")+" (default rsa2048 when --key is not given).")
	fl.BoolVar(&o.Force, "force", false, "HyperShift: rotate even though the HostedCluster's ValidConfiguration is already False.")
	fl.DurationVar(&o.KeepOldKeysFor, "keep-old-keys-for", o.KeepOldKeysFor, "HyperShift: keep a retired key in old-key.pub this long after it stopped signing (0: only the key being replaced).")
	fl.BoolVar(&o.Wait, "wait", o.Wait, "HyperShift: wait for ValidConfiguration and the hosted kube-apiserver rollout (false: stop after the patch).")
	fl.StringVar(&o.SecretName, "secret-name", "", "HyperShift: name of the new Secret (default HOSTEDCLUSTER-sa-signing-key-KID).")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "Do not ask for confirmation.")
	fl.BoolVar(&o.DryRun, "dry-run", false, "Show what would be done; change nothing.")
	fl.StringVarP(&o.Output, "output", "o", "", "Print the result as json or yaml.")
	_ = cmd.RegisterFlagCompletionFunc("restart", cobra.FixedCompletions(restartModes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("generate", cobra.FixedCompletions(hyperShiftKeyTypes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("hosted-cluster", completeFirstArgNames(f, hostedClusterNames))
	_ = cmd.RegisterFlagCompletionFunc("restart-namespace", completeFirstArgNames(f, namespaceNames))
	_ = cmd.RegisterFlagCompletionFunc("issuer", cobra.NoFileCompletions)
	_ = cmd.MarkFlagFilename("key", "key", "pem")
	_ = cmd.MarkFlagFilename("from", "yaml", "yml")
	_ = cmd.MarkFlagFilename("backup", "yaml", "yml")
	return cmd
}

func (o *RotateOptions) Complete(f cmdutil.Factory) error {
	var err error
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	if o.Client, err = f.KubernetesClientSet(); err != nil {
		return err
	}
	o.Dynamic, err = f.DynamicClient()
	return err
}

func (o *RotateOptions) hyperShift() bool { return o.HostedCluster != "" }

func (o *RotateOptions) Validate() error {
	if o.Output != "" && o.Output != "json" && o.Output != "yaml" {
		return fmt.Errorf("--output %q is not supported; use json or yaml", o.Output)
	}
	if o.hyperShift() {
		if o.Rollback || o.From != "" || o.Backup != "" || o.Restart != "none" || o.AllowNonHTTPS {
			return fmt.Errorf("--hosted-cluster rotates a signing key; --rollback, --from, --backup, --restart and --allow-non-https are for OpenShift's issuer")
		}
		if o.KeyFile != "" && o.Generate != "" {
			return fmt.Errorf("use --key FILE or --generate %s, not both", strings.Join(hyperShiftKeyTypes, "|"))
		}
		if o.Generate != "" && !slices.Contains(hyperShiftKeyTypes, o.Generate) {
			return fmt.Errorf("--generate %q: HyperShift reads only RSA signing keys (x509.ParsePKCS1PrivateKey); use one of %s", o.Generate, strings.Join(hyperShiftKeyTypes, ", "))
		}
		if o.KeepOldKeysFor < 0 || o.Timeout <= 0 {
			return fmt.Errorf("--keep-old-keys-for must not be negative and --timeout must be positive")
		}
		// --issuer is checked against the HostedCluster in Run: issuerURL is immutable.
		return nil
	}
	if o.KeyFile != "" || o.Generate != "" || o.SecretName != "" || o.Force {
		return fmt.Errorf("--key, --generate, --secret-name and --force need --hosted-cluster")
	}
	switch {
	case o.Rollback && o.From == "":
		return fmt.Errorf("--rollback needs --from FILE (a backup written by rotate)")
	case o.From != "" && !o.Rollback:
		return fmt.Errorf("--from is only used with --rollback")
	case o.Rollback && o.Issuer != "":
		return fmt.Errorf("use --issuer or --rollback, not both")
	case !o.Rollback && o.Issuer == "":
		return fmt.Errorf("give --issuer URL, --rollback --from FILE, or --hosted-cluster NAME")
	}
	if o.Issuer != "" {
		if err := openshift.ValidateIssuer(o.Issuer, o.AllowNonHTTPS); err != nil {
			return err
		}
	}
	found := false
	for _, m := range restartModes {
		found = found || m == o.Restart
	}
	if !found {
		return fmt.Errorf("--restart %q is not supported; use one of %s", o.Restart, strings.Join(restartModes, ", "))
	}
	if o.Restart == "pods" && !o.Yes && !o.DryRun {
		return fmt.Errorf("--restart pods deletes every pod and interrupts service; add --yes to confirm, or use --restart workloads")
	}
	if o.Timeout <= 0 || o.RestartPause < 0 {
		return fmt.Errorf("--timeout must be positive and --restart-pause not negative")
	}
	return nil
}

func (o *RotateOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.hyperShift() {
		return o.runHyperShift(ctx)
	}
	return o.runOpenShift(ctx)
}

// rotateResult is printed with -o.
type rotateResult struct {
	Previous    string             `json:"previousIssuer"`
	Issuer      string             `json:"issuer"`
	Backup      string             `json:"backup,omitempty"`
	TrustWindow string             `json:"trustWindow,omitempty"`
	Rollout     openshift.Progress `json:"rollout"`
	Restart     *restart.Result    `json:"restart,omitempty"`
	DryRun      bool               `json:"dryRun,omitempty"`
}

func (o *RotateOptions) runOpenShift(ctx context.Context) error {
	target := o.Issuer
	if o.Rollback {
		back, err := openshift.ReadBackup(o.From)
		if err != nil {
			return usageError(err)
		}
		target = openshift.IssuerOf(back)
		if target != "" {
			// It was accepted once; only check that it is a URL.
			if err := openshift.ValidateIssuer(target, true); err != nil {
				return usageErrorf("backup %s: %v", o.From, err)
			}
		}
	}
	plan, err := openshift.Plan(ctx, o.Dynamic, target, o.Rollback)
	if err != nil {
		if errors.Is(err, openshift.ErrNotOpenShift) {
			return usageError(err)
		}
		// Plan only reads: nothing changed.
		if clusterUnreachable(err) {
			return unreachableError(err, "nothing changed")
		}
		return &ExitError{Code: ExitFailed, Err: err}
	}
	fmt.Fprint(o.ErrOut, plan.Describe())
	res := &rotateResult{Previous: openshift.EffectiveIssuer(plan.Current), Issuer: openshift.EffectiveIssuer(plan.New), DryRun: o.DryRun}
	if o.DryRun {
		fmt.Fprintln(o.ErrOut, "dry run: nothing changed")
		return o.print(res)
	}
	if !o.Yes {
		if !stdinTerminal(o.In) {
			return usageErrorf("changing the issuer rolls out kube-apiserver on every node; add --yes to confirm")
		}
		if !confirm(o.In, o.ErrOut, "Proceed?") {
			return &ExitError{Code: ExitFailed, Err: fmt.Errorf("not confirmed: nothing changed")}
		}
	}
	res.Backup = o.Backup
	if res.Backup == "" {
		res.Backup = openshift.DefaultBackupPath(o.Now())
	}
	if err := plan.WriteBackup(res.Backup); err != nil {
		return usageErrorf("%v; nothing changed", err)
	}
	fmt.Fprintf(o.ErrOut, "backup of authentications.config.openshift.io/cluster: %s (restore with: kubectl bound-token rotate --rollback --from %s)\n", res.Backup, res.Backup)
	if err := plan.Apply(ctx, o.Dynamic); err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	fmt.Fprintf(o.ErrOut, "spec.serviceAccountIssuer set to %s; waiting for a kube-apiserver revision after %d\n", res.Issuer, plan.Revision)
	res.Rollout, err = waitRollout(ctx, o.Dynamic, plan.Revision, o.Timeout, o.ErrOut)
	if err != nil {
		if o.Output != "" {
			_ = o.print(res)
		}
		// The change is made either way: say how to follow or undo it.
		var ee *ExitError
		if errors.As(err, &ee) && ee.Err != nil {
			ee.Err = fmt.Errorf("%w; the issuer stays %s: follow with `kubectl bound-token wait --since-revision %d` or undo with `kubectl bound-token rotate --rollback --from %s`",
				ee.Err, res.Issuer, plan.Revision, res.Backup)
		}
		return err
	}
	fmt.Fprintf(o.ErrOut, "kube-apiserver at revision %d on %d/%d nodes\n", res.Rollout.Revision, res.Rollout.AtRevision, res.Rollout.Nodes)
	if res.TrustWindow, err = openshift.TrustWindow(ctx, o.Dynamic, plan.Current); err != nil {
		fmt.Fprintf(o.ErrOut, "warning: %v\n", err)
	} else {
		fmt.Fprintln(o.ErrOut, res.TrustWindow)
	}
	if err := o.restart(ctx, res); err != nil {
		return err
	}
	if o.Output != "" {
		return o.print(res)
	}
	fmt.Fprintf(o.Out, "issuer %s active\n", res.Issuer)
	return nil
}

func (o *RotateOptions) restart(ctx context.Context, res *rotateResult) error {
	if o.Restart == "none" {
		fmt.Fprintln(o.ErrOut, "pods keep tokens from the previous issuer until they restart: run again with --restart workloads, or restart them yourself")
		return nil
	}
	ro := restart.Options{Namespaces: o.RestartNamespaces, IncludeSystem: o.RestartSystem, Pause: o.RestartPause}
	if isTerminal(o.ErrOut) {
		ro.Progress = func(s string) { fmt.Fprintln(o.ErrOut, s) }
	}
	var err error
	if o.Restart == "workloads" {
		res.Restart, err = restart.Workloads(ctx, o.Client, ro)
	} else {
		res.Restart, err = restart.Pods(ctx, o.Client, ro)
	}
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("restart %s: %w", o.Restart, err)}
	}
	verb := "restarted %d workloads"
	if o.Restart == "pods" {
		verb = "deleted %d pods"
	}
	fmt.Fprintf(o.ErrOut, verb+" in %d namespaces", len(res.Restart.Restarted), res.Restart.Namespaces)
	if len(res.Restart.Skipped) > 0 {
		fmt.Fprintf(o.ErrOut, "; left alone: %s (add --restart-system to include them)", strings.Join(res.Restart.Skipped, ", "))
	}
	fmt.Fprintln(o.ErrOut)
	if n := len(res.Restart.Failed); n > 0 {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%d of %d restarts failed: %s", n, n+len(res.Restart.Restarted), strings.Join(res.Restart.Failed, "; "))}
	}
	return nil
}

// hyperShiftKeyTypes are the --generate types HyperShift can read: RSA only
// (hypershift.ParseSigningKey).
var hyperShiftKeyTypes = []string{"rsa2048", "rsa4096"}

func (o *RotateOptions) runHyperShift(ctx context.Context) error {
	var (
		pair *keys.Pair
		err  error
	)
	switch {
	case o.KeyFile != "":
		if pair, err = keys.LoadPrivate(o.KeyFile); err == nil {
			if _, err = hypershift.SigningKey(pair); err != nil {
				err = fmt.Errorf("--key %s: %w; use an RSA key, or --generate rsa2048", o.KeyFile, err)
			}
		}
	case o.Generate != "":
		pair, err = keys.Generate(o.Generate, false)
	default:
		pair, err = keys.Generate("rsa2048", false)
	}
	if err != nil {
		return usageError(err)
	}
	res, err := hypershift.Rotate(ctx, o.Client, o.Dynamic, hypershift.Rotation{
		Namespace: o.Namespace, HostedCluster: o.HostedCluster, Key: pair,
		SecretName: o.SecretName, Issuer: o.Issuer, DryRun: o.DryRun,
		Force: o.Force, KeepOldKeysFor: o.KeepOldKeysFor, Follow: o.Wait && !o.DryRun, Now: o.Now,
	})
	var (
		we *hypershift.WriteError
		re *hypershift.RefusedError
	)
	switch {
	case errors.As(err, &we):
		return &ExitError{Code: ExitFailed, Err: err}
	case errors.As(err, &re) && re.Forceable:
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w; or add --force to rotate anyway", err)}
	case errors.As(err, &re):
		return &ExitError{Code: ExitFailed, Err: err}
	case err != nil:
		return usageError(err)
	}
	if o.DryRun {
		fmt.Fprintf(o.ErrOut, "dry run: would create Secret %s/%s (kid %s) and point hostedcluster %s at it\n", o.Namespace, res.NewSecret, res.NewKeyID, res.HostedCluster)
	} else {
		made := "created"
		if res.SecretExisted {
			made = "found (from an earlier run)"
		}
		fmt.Fprintf(o.ErrOut, "%s Secret %s/%s; hostedcluster %s now signs with kid %s", made, o.Namespace, res.NewSecret, res.HostedCluster, res.NewKeyID)
		if res.OldSecret != "" {
			fmt.Fprintf(o.ErrOut, " (Secret %s of the previous kid %s is kept)", res.OldSecret, res.OldKeyID)
		}
		fmt.Fprintln(o.ErrOut)
	}
	if len(res.Trusted) > 0 {
		var ks []string
		for _, k := range res.Trusted {
			ks = append(ks, fmt.Sprintf("%s (until %s)", k.KeyID, k.DropAfter))
		}
		fmt.Fprintf(o.ErrOut, "old-key.pub keeps trusting kids %s\n", strings.Join(ks, ", "))
	}
	if len(res.Dropped) > 0 {
		fmt.Fprintf(o.ErrOut, "no longer trusted (retired more than %s ago): kids %s\n", o.KeepOldKeysFor, strings.Join(res.Dropped, ", "))
	}
	if !o.DryRun && o.Wait {
		fmt.Fprintf(o.ErrOut, "waiting for ValidConfiguration at generation %d and a rollout of deployment %s/%s after generation %d\n",
			res.Generation, res.ControlPlaneNamespace, hypershift.KASDeployment, res.KASGeneration)
		wctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		progress := func(string) {}
		if isTerminal(o.ErrOut) {
			progress = func(s string) { fmt.Fprintln(o.ErrOut, s) }
		}
		if err := hypershift.WaitRollout(wctx, o.Dynamic, res, progress); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("not confirmed within --timeout %s", o.Timeout)
			}
			rollback := "delete the new Secret to undo"
			if res.OldSecret != "" {
				rollback = fmt.Sprintf("roll back with: kubectl patch hostedcluster %s -n %s --type merge -p '{\"spec\":{\"serviceAccountSigningKey\":{\"name\":\"%s\"}}}'", o.HostedCluster, o.Namespace, res.OldSecret)
			}
			return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w; the patch was made: spec.serviceAccountSigningKey points at Secret %s (kid %s); %s", err, res.NewSecret, res.NewKeyID, rollback)}
		}
		fmt.Fprintf(o.ErrOut, "HyperShift accepted the key and deployment %s/%s rolled out\n", res.ControlPlaneNamespace, hypershift.KASDeployment)
	}
	if o.Output != "" {
		return printStructured(o.Out, o.Output, res)
	}
	fmt.Fprintln(o.Out, res.NewKeyID)
	return nil
}

func (o *RotateOptions) print(res *rotateResult) error {
	if o.Output == "" {
		return nil
	}
	return printStructured(o.Out, o.Output, res)
}
