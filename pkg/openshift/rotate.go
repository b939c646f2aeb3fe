package openshift

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/restart"
)

// Restart modes after a rotation's rollout.
const (
	RestartNone      = "none"
	RestartWorkloads = "workloads"
	RestartPods      = "pods"
)

// RestartModes lists the restart modes, in the order they are offered.
var RestartModes = []string{RestartNone, RestartWorkloads, RestartPods}

// IssuerRotation describes one change of spec.serviceAccountIssuer, or the
// rollback to the issuer a backup holds.
type IssuerRotation struct {
	// Issuer is the new issuer, already checked with ValidateIssuer. Unused
	// when RollbackFrom is set.
	Issuer string
	// RollbackFrom is a backup written by an earlier rotation: its issuer is
	// restored, even while a failed rollout is still "in progress".
	RollbackFrom string
	// Backup is the file the Authentication object is saved to before the
	// change (DefaultBackupPath when empty); it is never replaced.
	Backup string
	// DryRun is kubectl's --dry-run strategy: DryRunClient stops after the
	// plan; DryRunServer asks Confirm, sends the patch with dryRun=All and
	// stops there (no backup, no rollout).
	DryRun cmdutil.DryRunStrategy
	// Confirm is asked once the plan is reported, before anything changes.
	// It returns false to stop (kubeapi.ErrNotConfirmed) or an error to stop with it.
	// Nil means yes.
	Confirm func(*IssuerPlan) (bool, error)
	// Timeout bounds the wait for the kube-apiserver rollout.
	Timeout time.Duration
	// Restart is RestartNone, RestartWorkloads or RestartPods; RestartOptions
	// choose where (its Progress is set from Report).
	Restart        string
	RestartOptions restart.Options
	// Report receives each step as it happens; nil drops them.
	Report func(Step)
	Now    func() time.Time
}

// StepKind names a step of RotateIssuer.
type StepKind int

const (
	// StepPlanned: Plan is read and checked; nothing changed yet.
	StepPlanned StepKind = iota
	// StepBackedUp: the Authentication object is saved to Backup.
	StepBackedUp
	// StepPatched: spec.serviceAccountIssuer is set; the rollout beyond
	// Plan.Revision is awaited.
	StepPatched
	// StepRollout: the rollout's state changed (Progress).
	StepRollout
	// StepReconnect: the watch on the operator was resumed (Message).
	StepReconnect
	// StepRolledOut: every node runs the new revision (Progress).
	StepRolledOut
	// StepTrustWindow: Message says until when the previous issuer is
	// trusted; with Err, that could not be read (a warning).
	StepTrustWindow
	// StepRestarting: one line of restart progress (Message).
	StepRestarting
	// StepRestarted: the restart is done (Result.Restart).
	StepRestarted
)

// Step is one report from RotateIssuer.
type Step struct {
	Kind     StepKind
	Plan     *IssuerPlan
	Backup   string
	Progress Progress
	Message  string
	Err      error
}

// Stage is where RotateIssuer stopped with an error; it tells what changed.
type Stage string

const (
	// StageInput: the rollback backup could not be read; nothing changed.
	StageInput Stage = "input"
	// StagePlan: reading or checking the cluster failed; nothing changed.
	StagePlan Stage = "plan"
	// StageConfirm: the change was not confirmed; nothing changed.
	StageConfirm Stage = "confirm"
	// StageBackup: the backup could not be written; nothing changed.
	StageBackup Stage = "backup"
	// StagePatch: the patch failed; the error says whether it may have gone
	// through.
	StagePatch Stage = "patch"
	// StageRollout: the issuer is changed; its rollout failed (ErrFailed),
	// timed out (context.DeadlineExceeded) or could not be followed.
	StageRollout Stage = "rollout"
	// StageRestart: the rollout is done; restarting workloads failed.
	StageRestart Stage = "restart"
)

// RotateError is RotateIssuer's error: the stage it stopped at and why.
type RotateError struct {
	Stage Stage
	Err   error
}

func (e *RotateError) Error() string { return e.Err.Error() }
func (e *RotateError) Unwrap() error { return e.Err }

// Changed reports whether the issuer may have been changed when it stopped.
func (e *RotateError) Changed() bool {
	return e.Stage == StagePatch || e.Stage == StageRollout || e.Stage == StageRestart
}

// IssuerRotationResult is what a rotation did.
type IssuerRotationResult struct {
	metav1.TypeMeta `json:",inline"`
	Previous        string `json:"previousIssuer"`
	Issuer          string `json:"issuer"`
	// SinceRevision is latestAvailableRevision before the change: the
	// rollout goes beyond it.
	SinceRevision int32           `json:"sinceRevision"`
	Backup        string          `json:"backup,omitempty"`
	TrustWindow   string          `json:"trustWindow,omitempty"`
	Rollout       Progress        `json:"rollout"`
	Restart       *restart.Result `json:"restart,omitempty"`
	// DryRun is "client" or "server" when nothing was changed on purpose.
	DryRun string `json:"dryRun,omitempty"`
}

// DeepCopyObject makes the result printable by cli-runtime's printers.
func (r *IssuerRotationResult) DeepCopyObject() runtime.Object {
	c := *r
	if r.Restart != nil {
		rs := *r.Restart
		c.Restart = &rs
	}
	return &c
}

// RotateIssuer changes the service-account issuer the way the
// cluster-kube-apiserver-operator expects it changed: plan (refusing what
// cannot work), confirm, back up authentications.config.openshift.io/cluster,
// patch spec.serviceAccountIssuer under the resourceVersion that was read,
// wait for the kube-apiserver revision after the one read in the plan (the
// condition alone can still report the old revision as done), read until
// when the previous issuer stays trusted (status.serviceAccountIssuers of
// kubeapiservers.operator.openshift.io/cluster), then restart
// workloads if asked. The result is returned with every error after the
// patch, for the caller to print.
func RotateIssuer(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, r IssuerRotation) (*IssuerRotationResult, error) {
	report := r.Report
	if report == nil {
		report = func(Step) {}
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	target, rollback, err := r.target()
	if err != nil {
		return nil, &RotateError{StageInput, err}
	}
	plan, err := Plan(ctx, dyn, target, rollback)
	if err != nil {
		return nil, &RotateError{StagePlan, err}
	}
	report(Step{Kind: StepPlanned, Plan: plan})
	res := &IssuerRotationResult{Previous: EffectiveIssuer(plan.Current), Issuer: EffectiveIssuer(plan.New), SinceRevision: plan.Revision}
	if r.DryRun == cmdutil.DryRunClient {
		res.DryRun = kubeapi.DryRunName(r.DryRun)
		return res, nil
	}
	if err := r.confirm(plan); err != nil {
		return nil, &RotateError{StageConfirm, err}
	}
	if r.DryRun == cmdutil.DryRunServer {
		if err := plan.apply(ctx, dyn, r.DryRun); err != nil {
			return nil, &RotateError{StagePlan, err}
		}
		res.DryRun = kubeapi.DryRunName(r.DryRun)
		return res, nil
	}
	res.Backup = r.Backup
	if res.Backup == "" {
		res.Backup = DefaultBackupPath(now())
	}
	if err := plan.WriteBackup(res.Backup); err != nil {
		return nil, &RotateError{StageBackup, err}
	}
	report(Step{Kind: StepBackedUp, Plan: plan, Backup: res.Backup})
	if err := plan.Apply(ctx, dyn); err != nil {
		return res, &RotateError{StagePatch, err}
	}
	report(Step{Kind: StepPatched, Plan: plan, Backup: res.Backup})

	res.Rollout, err = awaitRollout(ctx, dyn, plan.Revision, r.Timeout, report)
	if err != nil {
		return res, &RotateError{StageRollout, err}
	}
	report(Step{Kind: StepRolledOut, Progress: res.Rollout})
	res.TrustWindow, err = TrustWindow(ctx, dyn, plan.Current)
	report(Step{Kind: StepTrustWindow, Message: res.TrustWindow, Err: err})

	if r.Restart == "" || r.Restart == RestartNone {
		return res, nil
	}
	if err := r.restartAfterRollout(ctx, cs, res, report); err != nil {
		return res, &RotateError{StageRestart, err}
	}
	return res, nil
}

// target is the issuer to set and whether it is a rollback: r.Issuer, or
// the issuer in the backup r.RollbackFrom.
func (r IssuerRotation) target() (string, bool, error) {
	if r.RollbackFrom == "" {
		return r.Issuer, false, nil
	}
	back, err := ReadBackup(r.RollbackFrom)
	if err != nil {
		return "", true, err
	}
	target := IssuerOf(back)
	// It was accepted once; only check that it is a URL.
	if target != "" {
		if err := ValidateIssuer(target, true); err != nil {
			return "", true, fmt.Errorf("backup %s: %w", r.RollbackFrom, err)
		}
	}
	return target, true, nil
}

// confirm asks r.Confirm about plan; a no is kubeapi.ErrNotConfirmed.
func (r IssuerRotation) confirm(plan *IssuerPlan) error {
	if r.Confirm == nil {
		return nil
	}
	ok, err := r.Confirm(plan)
	if err == nil && !ok {
		err = kubeapi.ErrNotConfirmed
	}
	return err
}

// awaitRollout waits up to timeout for the kube-apiserver rollout beyond
// sinceRevision, reporting its progress and the watch's reconnects.
func awaitRollout(ctx context.Context, dyn dynamic.Interface, sinceRevision int32, timeout time.Duration, report func(Step)) (Progress, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := &Waiter{
		Client:        dyn,
		SinceRevision: sinceRevision,
		OnProgress:    func(p Progress) { report(Step{Kind: StepRollout, Progress: p}) },
		OnReconnect:   func(reason string) { report(Step{Kind: StepReconnect, Message: reason}) },
	}
	return w.Wait(wctx)
}

// restartAfterRollout restarts the workloads or pods r.Restart names, into res.Restart;
// restarts that failed one by one are an error too.
func (r IssuerRotation) restartAfterRollout(ctx context.Context, cs kubernetes.Interface, res *IssuerRotationResult, report func(Step)) error {
	ro := r.RestartOptions
	ro.Progress = func(s string) { report(Step{Kind: StepRestarting, Message: s}) }
	var err error
	if r.Restart == RestartPods {
		res.Restart, err = restart.Pods(ctx, cs, ro)
	} else {
		res.Restart, err = restart.Workloads(ctx, cs, ro)
	}
	if err != nil {
		return fmt.Errorf("restart %s: %w", r.Restart, err)
	}
	report(Step{Kind: StepRestarted})
	if n := len(res.Restart.Failed); n > 0 {
		return fmt.Errorf("%d of %d restarts failed: %s", n, n+len(res.Restart.Restarted), strings.Join(res.Restart.Failed, "; "))
	}
	return nil
}
