package cmd

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openreports/reports-api/pkg/client/clientset/versioned"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/doctor"
	"github.com/bound-token/kubectl-bound-token/pkg/openreports"
	"github.com/bound-token/kubectl-bound-token/pkg/verify"
)

// DoctorOptions holds what `doctor` needs.
type DoctorOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	ServiceAccount string
	IssuerCA       string
	IssuerTimeout  time.Duration

	Namespace  string
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface
	RESTConfig *rest.Config
	HTTPClient *http.Client
	// fleet: doctor over many contexts (--contexts, --all-contexts).
	fleet *fleetFlags
	// Report writes the checks into the cluster as the ClusterReport
	// bound-token-doctor; Reports is its client (a test's fake, or built
	// in Complete).
	Report  bool
	Reports versioned.Interface
	Now     func() time.Time

	printer printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewDoctorOptions(streams genericiooptions.IOStreams) *DoctorOptions {
	return &DoctorOptions{PrintFlags: newResultPrintFlags(), ServiceAccount: "default", IssuerTimeout: 5 * time.Second, Now: time.Now, IOStreams: streams}
}

func NewCmdDoctor(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewDoctorOptions(streams)
	cmd := &cobra.Command{
		Use:                   "doctor [--serviceaccount NAME] [--report] [-o json|yaml|jsonpath=...]",
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

			The release-dependent features, judged by what the cluster serves, not by its
			version number: kube-apiserver's version and the kubectl that launched the plugin
			(KUBECTL_PATH, set by kubectl 1.37+); which admissionregistration.k8s.io version
			serves MutatingAdmissionPolicy (the guard can then run inside kube-apiserver);
			whether the guard is installed and acts, proved by a dry run of kube-apiserver's
			own last-used patch on a Secret migrate --apply invalidated (as guard status
			proves it, but never creating a Secret: without one, or without the right to
			impersonate system:apiserver, it is "unproven");
			whether an external token signer is in use (its key fetches counted on /metrics,
			apiserver_externaljwt_fetch_keys_request_total; "unknown" when /metrics is
			forbidden), and if so whether legacy Secret tokens still verify, their kids
			compared with the JWKS.

			With --report the checklist is also written into the cluster as the OpenReports
			ClusterReport bound-token-doctor (one result per check: its status as result, the
			fix as property "fix"), for Policy Reporter; it first checks that the CRD is served
			and that it may create and patch clusterreports.openreports.io (exit 2 otherwise,
			before any check). It never writes migrate's objects.

			Exit codes: 0 no check failed (warnings allowed), 1 a check failed (or the report
			could not be written), 2 usage error or the API server did not answer (nothing else
			was checked).`),
		Example: templates.Examples(`
			# Check the current cluster
			kubectl bound-token doctor

			# As JSON, minting the probe token for another ServiceAccount
			kubectl bound-token doctor -n ci --serviceaccount builder -o json

			# Check three clusters, four at a time
			kubectl bound-token doctor --contexts prod-eu,prod-us,staging --parallel 4

			# Also publish the checklist in the cluster, for Policy Reporter (ClusterReport bound-token-doctor)
			kubectl bound-token doctor --report`),
		Args: argsUsage(cobra.NoArgs),
		RunE: runE(o, f),
	}
	addPrintFlags(cmd, o.PrintFlags)
	cmd.Flags().StringVar(&o.ServiceAccount, "serviceaccount", o.ServiceAccount, "ServiceAccount (in the namespace) to mint the probe token for.")
	cmd.Flags().DurationVar(&o.IssuerTimeout, "issuer-timeout", o.IssuerTimeout, "Timeout for probing the issuer's public discovery.")
	cmd.Flags().StringVar(&o.IssuerCA, "issuer-ca", "", "CA bundle for the issuer's public discovery, when it is not publicly trusted.")
	cmd.Flags().BoolVar(&o.Report, "report", false, reportFlagUsage+" doctor writes one ClusterReport, bound-token-doctor, never migrate's objects.")
	o.fleet = addFleetFlags(f, cmd)
	return cmd
}

func (o *DoctorOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	var err error
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	var roots *x509.CertPool
	if o.IssuerCA != "" {
		if roots, err = verify.LoadCAPool(o.IssuerCA); err != nil {
			return usageErrorf("--issuer-ca: %v", err)
		}
	}
	o.HTTPClient = verify.HTTPClient(roots, false)
	if done, err := o.fleet.complete(f, cmd, nil); done || err != nil {
		return err
	}
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.Client, err = f.KubernetesClientSet(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.Dynamic, err = f.DynamicClient(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.RESTConfig, err = f.ToRESTConfig(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.Report && o.Reports == nil {
		if o.Reports, err = versioned.NewForConfig(o.RESTConfig); err != nil {
			return usageErrorf("%w", err)
		}
	}
	return nil
}

func (o *DoctorOptions) Validate() error {
	if o.ServiceAccount == "" {
		return fmt.Errorf("--serviceaccount must not be empty")
	}
	if o.IssuerTimeout <= 0 {
		return fmt.Errorf("--issuer-timeout must be positive")
	}
	return nil
}

// Run prints the checklist, as kind DoctorReport under -o.
func (o *DoctorOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.fleet.enabled() {
		return o.runFleet(ctx)
	}
	if o.Report {
		if err := openreports.Preflight(ctx, o.Client, doctorReportNeeds); err != nil {
			return usageErrorf("%w", err)
		}
	}
	checks := doctor.Run(ctx, o.Client, o.Dynamic, doctor.Options{Namespace: o.Namespace, ServiceAccount: o.ServiceAccount, IssuerTimeout: o.IssuerTimeout, HTTPClient: o.HTTPClient, RESTConfig: o.RESTConfig})
	if o.printer != nil {
		if err := o.printer.PrintObj(newResult("DoctorReport", doctorReport{Checks: checks, Failed: doctor.Failed(checks)}), o.Out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
		for _, c := range checks {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.Name, c.Message)
			if c.Fix != "" {
				fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	// doctor.Run stops after a failed "api" check: nothing was checked.
	if len(checks) == 1 && checks[0].Name == "api" && checks[0].Status == doctor.Fail {
		return silent(ExitUsage)
	}
	if o.Report {
		done, err := openreports.Write(ctx, o.Reports, openreports.PlanDoctor(openreports.DoctorResults(checks, o.Now().UTC())))
		if err := reportWritten(o.ErrOut, "", done, err); err != nil {
			return err
		}
	}
	if doctor.Failed(checks) {
		return silent(ExitFailed)
	}
	return nil
}

// doctorReportNeeds is what doctor --report writes: its ClusterReport.
var doctorReportNeeds = openreports.Needs{ClusterReports: true}

// doctorReport is doctor's printed body.
type doctorReport struct {
	Checks []doctor.Check `json:"checks"`
	Failed bool           `json:"failed"`
}
