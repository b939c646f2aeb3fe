package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	flag "github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

var (
	rotateHostedClusterLong = templates.LongDesc(`
		Rotate a HyperShift HostedCluster's service-account signing key and follow the
		rollout.

		Creates a new Secret with the private key under "key" and, under "old-key.pub",
		the previous public key and the earlier ones the current Secret carried while
		they are inside --keep-old-keys-for (default one year, the longest lifetime of a
		kubelet-projected token); points spec.serviceAccountSigningKey at it and prints the
		new kid. The old Secret is kept. HyperShift reads only RSA keys in PKCS#1 form
		("RSA PRIVATE KEY"): a PKCS#8 RSA key is converted, EC keys are refused; without
		--key or --generate an rsa2048 key is generated. Refused when spec.issuerURL is
		HyperShift's default https://kubernetes.default.svc (immutable; only in-cluster
		clients could verify the tokens), when it differs from --issuer, or when
		ValidConfiguration is already False (unless --force). Then it watches until
		HyperShift reports ValidConfiguration True for the change and Deployment
		kube-apiserver in the control-plane namespace NAMESPACE-NAME rolled out a new
		generation (as 'kubectl rollout status' judges it); --wait=false stops after the
		patch. It asks before the first change on a terminal; scripts add --yes.
		--dry-run=server sends the Secret and the patch with dryRun=All.

		Every API call is repeated on transient errors. If a rotation stops after
		creating the new Secret, running the same command again (same key, same
		--secret-name) takes that Secret over and finishes.

		Exit codes: 0 done and rolled out, 1 refused (the cluster's state), rejected by
		HyperShift, failed, not confirmed, or not rolled out within --timeout (the message
		says whether the patch was made), 2 bad flags or input, not HyperShift, or no
		--yes without a terminal: nothing was changed.`)

	rotateHostedClusterExample = templates.Examples(`
		# Rotate a HostedCluster's signing key to a new RSA key and follow the rollout
		kubectl bound-token rotate hosted-cluster prod -n clusters

		# ... with a key you made yourself (RSA; PKCS#8 is converted to PKCS#1)
		kubectl bound-token rotate hosted-cluster prod -n clusters --key ./sa-keys/sa.key

		# ... keeping retired keys trusted for 90 days instead of a year
		kubectl bound-token rotate hosted-cluster prod -n clusters --keep-old-keys-for 2160h

		# In a script: no question, the new kid and Secret as JSON, without waiting
		kubectl bound-token rotate hosted-cluster prod -n clusters --yes --wait=false -o json

		# What would change, checked by the apiserver, without changing it
		kubectl bound-token rotate hosted-cluster prod -n clusters --dry-run=server`)
)

// RotateHostedClusterKind is the kind of rotate hosted-cluster's -o output.
const RotateHostedClusterKind = "SigningKeyRotation"

// hyperShiftKeyTypes are the --generate types HyperShift can read: RSA only
// (hypershift.ParseSigningKey).
var hyperShiftKeyTypes = []string{"rsa2048", "rsa4096"}

// RotateHostedClusterOptions holds what `rotate hosted-cluster` needs.
type RotateHostedClusterOptions struct {
	rotateOptions

	HostedCluster  string
	Namespace      string
	Issuer         string
	KeyFile        string
	Generate       string
	SecretName     string
	Force          bool
	KeepOldKeysFor time.Duration
	Wait           bool
}

func NewRotateHostedClusterOptions(streams genericiooptions.IOStreams) *RotateHostedClusterOptions {
	return &RotateHostedClusterOptions{rotateOptions: newRotateOptions(streams), KeepOldKeysFor: hypershift.DefaultKeepOldKeysFor, Wait: true}
}

func NewCmdRotateHostedCluster(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewRotateHostedClusterOptions(streams)
	cmd := newRotateCommand(f, o, &cobra.Command{
		Use:               "hosted-cluster NAME [-n NAMESPACE] [--key FILE | --generate rsa2048|rsa4096] [--yes]",
		Short:             "Rotate a HyperShift HostedCluster's signing key and follow the rollout",
		Long:              rotateHostedClusterLong,
		Example:           rotateHostedClusterExample,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeFirstArgNames(f, hostedClusterNames),
	}, "How long to wait for ValidConfiguration and the rollout (exit 1 after).", "Do not ask for confirmation (needed when stdin is not a terminal).")
	cmd.Flags().StringVar(&o.Issuer, "issuer", "", "Refuse unless spec.issuerURL is this URL (it cannot be changed after creation).")
	o.registerCompletions(cmd)
	return cmd
}

// addFlags adds the flags only `rotate hosted-cluster` has (the deprecated
// `rotate --hosted-cluster` form adds them too).
func (o *RotateHostedClusterOptions) addFlags(fl *flag.FlagSet) {
	fl.StringVar(&o.KeyFile, "key", "", "PEM RSA private key to use (PKCS#1, or PKCS#8 which is converted).")
	fl.StringVar(&o.Generate, "generate", "", "Generate the new key: "+strings.Join(hyperShiftKeyTypes, ", ")+" (default rsa2048 when --key is not given).")
	fl.BoolVar(&o.Force, "force", false, "Rotate even though the HostedCluster's ValidConfiguration is already False.")
	fl.DurationVar(&o.KeepOldKeysFor, "keep-old-keys-for", o.KeepOldKeysFor, "Keep a retired key in old-key.pub this long after it stopped signing (0: only the key being replaced).")
	fl.BoolVar(&o.Wait, "wait", o.Wait, "Wait for ValidConfiguration and the hosted kube-apiserver rollout (false: stop after the patch).")
	fl.StringVar(&o.SecretName, "secret-name", "", "Name of the new Secret (default HOSTEDCLUSTER-sa-signing-key-KID).")
}

func (o *RotateHostedClusterOptions) registerCompletions(cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("generate", cobra.FixedCompletions(hyperShiftKeyTypes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("issuer", cobra.NoFileCompletions)
	_ = cmd.MarkFlagFilename("key", "key", "pem")
}

func (o *RotateHostedClusterOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	return o.complete(f, cmd, args, &o.HostedCluster, &o.Namespace)
}

func (o *RotateHostedClusterOptions) Validate() error {
	if o.HostedCluster == "" {
		return fmt.Errorf("give the HostedCluster's NAME")
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
	// --issuer is checked against the HostedCluster in Run: issuerURL is
	// immutable, so it can only be compared.
	return nil
}

func (o *RotateHostedClusterOptions) key() (*keys.Pair, error) {
	switch {
	case o.KeyFile != "":
		pair, err := keys.LoadPrivate(o.KeyFile)
		if err != nil {
			return nil, err
		}
		if _, err = hypershift.SigningKey(pair); err != nil {
			return nil, fmt.Errorf("--key %s: %w; use an RSA key, or --generate rsa2048", o.KeyFile, err)
		}
		return pair, nil
	case o.Generate != "":
		return keys.Generate(o.Generate, false)
	}
	return keys.Generate("rsa2048", false)
}

func (o *RotateHostedClusterOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	pair, err := o.key()
	if err != nil {
		return usageErrorf("%w", err)
	}
	res, err := hypershift.Rotate(ctx, o.Client, o.Dynamic, hypershift.Rotation{
		Namespace: o.Namespace, HostedCluster: o.HostedCluster, Key: pair,
		SecretName: o.SecretName, Issuer: o.Issuer, DryRun: o.DryRunStrategy,
		Force: o.Force, KeepOldKeysFor: o.KeepOldKeysFor, Follow: o.Wait && !o.dryRun(), Confirm: o.confirm, Now: o.Now,
	})
	if err != nil {
		return o.exitError(err)
	}
	o.reportRotation(res)
	if !o.dryRun() && o.Wait {
		if err := o.wait(ctx, res); err != nil {
			return err
		}
	}
	return o.output(RotateHostedClusterKind, res, func() { fmt.Fprintln(o.Out, res.NewKeyID) })
}

// reportRotation says on stderr what was written (or on a dry run, would
// be) and which old keys the new Secret keeps trusting.
func (o *RotateHostedClusterOptions) reportRotation(res *hypershift.Result) {
	if o.dryRun() {
		o.sayDryRun("would create Secret %s/%s (kid %s) and point hostedcluster %s at it", o.Namespace, res.NewSecret, res.NewKeyID, res.HostedCluster)
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
}

// confirm shows the rotation and asks on a terminal; a script must say
// --yes.
func (o *RotateHostedClusterOptions) confirm(res *hypershift.Result) (bool, error) {
	return o.confirmed(fmt.Sprintf("rotating the signing key rolls out the hosted kube-apiserver of %s; add --yes to confirm (stdin is not a terminal to ask on); nothing changed", o.HostedCluster), func() {
		from := "no custom key yet"
		if res.OldKeyID != "" {
			from = "kid " + res.OldKeyID
		}
		fmt.Fprintf(o.ErrOut, "hostedcluster %s/%s: signing key from %s to kid %s (new Secret %s); HyperShift rolls out the hosted kube-apiserver\n",
			o.Namespace, o.HostedCluster, from, res.NewKeyID, res.NewSecret)
	})
}

func (o *RotateHostedClusterOptions) wait(ctx context.Context, res *hypershift.Result) error {
	fmt.Fprintf(o.ErrOut, "waiting for ValidConfiguration at generation %d and a rollout of deployment %s/%s after generation %d\n",
		res.Generation, res.ControlPlaneNamespace, hypershift.KASDeployment, res.KASGeneration)
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := hypershift.WaitRollout(wctx, o.Dynamic, res, o.progressLine()); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("not confirmed within --timeout %s", o.Timeout)
		}
		rollback := "delete the new Secret to undo"
		if res.OldSecret != "" {
			rollback = fmt.Sprintf("roll back with: %s patch hostedcluster %s -n %s --type merge -p '{\"spec\":{\"serviceAccountSigningKey\":{\"name\":\"%s\"}}}'", text.Kubectl(), o.HostedCluster, o.Namespace, res.OldSecret)
		}
		return failedErrorf("%w; the patch was made: spec.serviceAccountSigningKey points at Secret %s (kid %s); %s", err, res.NewSecret, res.NewKeyID, rollback)
	}
	fmt.Fprintf(o.ErrOut, "HyperShift accepted the key and deployment %s/%s rolled out\n", res.ControlPlaneNamespace, hypershift.KASDeployment)
	return nil
}

// exitError maps hypershift.Rotate's errors to exit codes and adds the
// flag-level advice the domain package leaves out.
func (o *RotateHostedClusterOptions) exitError(err error) error {
	if exit, ok := confirmationExitError(err); ok {
		return exit
	}
	var (
		we *hypershift.WriteError
		re *hypershift.RefusedError
	)
	switch {
	case errors.As(err, &we) && we.KeptSecret != "":
		ns, name, _ := strings.Cut(we.KeptSecret, "/")
		return failedErrorf("%w; the new Secret %s is kept: run the same command again with --key FILE and, if you gave one, the same --secret-name "+
			"(a generated key is in the Secret: %s get secret -n %s %s -o jsonpath='{.data.key}' | base64 -d > FILE), or delete the Secret", err, we.KeptSecret, text.Kubectl(), ns, name)
	case errors.As(err, &we):
		return failedErrorf("%w", err)
	case errors.As(err, &re) && re.Forceable:
		return failedErrorf("%w; or add --force to rotate anyway", err)
	case errors.As(err, &re):
		return failedErrorf("%w", err)
	case errors.Is(err, hypershift.ErrNotHyperShift):
		return usageErrorf("%v; point --kubeconfig at the management cluster", err)
	case errors.Is(err, hypershift.ErrSecretTaken):
		return usageErrorf("%v; choose another --secret-name", err)
	}
	return usageErrorf("%w", err)
}
