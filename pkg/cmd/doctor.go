package cmd

import (
	"crypto/x509"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/doctor"
	"github.com/bound-token/kubectl-bound-token/pkg/verify"
)

func NewCmdDoctor(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	var (
		sa, output, issuerCA string
		timeout              time.Duration
		ff                   *fleetFlags
	)
	cmd := &cobra.Command{
		Use:                   "doctor [--serviceaccount NAME] [-o json|yaml]",
		DisableFlagsInUseLine: true,
		Short:                 "Check the cluster's token setup: issuer, keys, discovery, legacy Secrets",
		Long: templates.LongDesc(`
			A checklist with pass, warn, fail or skip and a one-line fix for each problem:
			API reachable; TokenRequest works; the discovery issuer equals a fresh token's iss;
			the JWKS holds that token's kid and verifies it; the issuer's public discovery is
			reachable over HTTPS (unless it is the in-cluster default); legacy token Secrets
			(used, unused, invalidated); Node binding; on OpenShift the active and still-trusted
			issuers and the kube-apiserver rollout; on HyperShift each HostedCluster's
			signing-key Secret.

			Exit codes: 0 no check failed (warnings allowed), 1 a check failed, 2 usage error
			or the API server did not answer (nothing else was checked).`),
		Example: templates.Examples(`
			# Check the current cluster
			kubectl bound-token doctor

			# As JSON, minting the probe token for another ServiceAccount
			kubectl bound-token doctor -n ci --serviceaccount builder -o json

			# Check three clusters, four at a time
			kubectl bound-token doctor --contexts prod-eu,prod-us,staging --parallel 4`),
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return usageErrorf("--output %q is not supported; use json or yaml", output)
			}
			if err := ff.validate(cmd, nil); err != nil {
				return usageError(err)
			}
			var roots *x509.CertPool
			if issuerCA != "" {
				var err error
				if roots, err = verify.LoadCAPool(issuerCA); err != nil {
					return usageErrorf("--issuer-ca: %v", err)
				}
			}
			hc := verify.HTTPClient(roots, false)
			if ff.enabled() {
				return doctorFleet(cmd.Context(), f, cmd, streams, ff, output, doctor.Options{ServiceAccount: sa, IssuerTimeout: timeout, HTTPClient: hc})
			}
			ns, _, err := f.ToRawKubeConfigLoader().Namespace()
			if err != nil {
				return usageError(err)
			}
			cs, err := f.KubernetesClientSet()
			if err != nil {
				return usageError(err)
			}
			dyn, err := f.DynamicClient()
			if err != nil {
				return usageError(err)
			}
			checks := doctor.Run(cmd.Context(), cs, dyn, doctor.Options{Namespace: ns, ServiceAccount: sa, IssuerTimeout: timeout, HTTPClient: hc})
			if output != "" {
				if err := printStructured(streams.Out, output, map[string]any{"checks": checks, "failed": doctor.Failed(checks)}); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
				for _, c := range checks {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.Name, c.Message)
					if c.Fix != "" {
						fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
					}
				}
				tw.Flush()
			}
			// Run stops after a failed "api" check: nothing was checked.
			if len(checks) == 1 && checks[0].Name == "api" && checks[0].Status == doctor.Fail {
				return &ExitError{Code: ExitUsage}
			}
			if doctor.Failed(checks) {
				return silentFailure
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sa, "serviceaccount", "default", "ServiceAccount (in the namespace) to mint the probe token for.")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format. One of: json|yaml.")
	cmd.Flags().DurationVar(&timeout, "issuer-timeout", 5*time.Second, "Timeout for probing the issuer's public discovery.")
	ff = addFleetFlags(cmd)
	cmd.Flags().StringVar(&issuerCA, "issuer-ca", "", "CA bundle for the issuer's public discovery, when it is not publicly trusted.")
	return cmd
}
