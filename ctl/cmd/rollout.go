package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

const (
	// changeCauseAnnotation is what rollout history prints per revision.
	changeCauseAnnotation = "kubernetes.io/change-cause"
	// restartedAtAnnotation changes the pod template so a restart rolls out.
	restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
	// podTemplateHashLabel is added by the deployment controller to each
	// ReplicaSet's template; undo must not copy it back.
	podTemplateHashLabel = "pod-template-hash"
	// progressDeadlineReason marks a rollout that stopped progressing.
	progressDeadlineReason = "ProgressDeadlineExceeded"
)

func newRolloutCmd(streams IOStreams, f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "rollout SUBCOMMAND",
		Short: "Manage the rollout of a deployment",
		Example: `  # Watch the rollout status of a deployment
  ctl rollout status deployment/web

  # Roll back to the previous deployment
  ctl rollout undo deployment/web

  # Restart the pods of a deployment
  ctl rollout restart deployment/web`,
		RunE: func(c *cobra.Command, args []string) error {
			return subcommandRequired(c, args)
		},
	}
	c.AddCommand(newRolloutStatusCmd(streams, f), newRolloutHistoryCmd(streams, f), newRolloutUndoCmd(streams, f),
		newRolloutRestartCmd(streams, f), newRolloutPauseCmd(streams, f, true), newRolloutPauseCmd(streams, f, false))
	return c
}

// rolloutTarget is the deployment a rollout subcommand acts on, with the
// client and namespace to reach it.
type rolloutTarget struct {
	cl   *client.Client
	ns   string
	name string
}

// rolloutTargetOf reads "deployment NAME" or "deployment/NAME" and opens a
// client in the namespace of the command line.
func (f *Factory) rolloutTargetOf(c *cobra.Command, args []string) (*rolloutTarget, error) {
	t, err := singleTarget(args)
	if err != nil {
		return nil, usageErrorf(c, "%v", err)
	}
	if t.info.Kind != "Deployment" {
		return nil, fmt.Errorf("no rollout for %s: only deployments roll out", t.info.Resource)
	}
	cl, ns, err := f.clientInNamespace(c.Context())
	if err != nil {
		return nil, err
	}
	return &rolloutTarget{cl: cl, ns: ns, name: t.names[0]}, nil
}

// get reads the deployment.
func (t *rolloutTarget) get(ctx context.Context) (*api.Deployment, error) {
	d, err := t.cl.Deployments().Get(ctx, t.ns, t.name)
	if err != nil {
		return nil, withObject(err, deploymentInfo(), t.name)
	}
	return d, nil
}

// update applies mutate to the deployment, retrying on conflicts; it
// reports whether anything changed.
func (t *rolloutTarget) update(ctx context.Context, mutate func(*api.Deployment) error) (bool, error) {
	_, changed, err := updateObject(ctx, client.ForKind(t.cl, deploymentInfo()), t.ns, t.name, func(obj kinds.Object) error {
		return mutate(obj.(*api.Deployment))
	})
	return changed, err
}

// RolloutStatus is kubectl's rollout status message for a deployment and
// whether the rollout is complete.
func RolloutStatus(d *api.Deployment) (string, bool, error) {
	name, st := d.GetMetadata().GetName(), d.GetStatus()
	if d.GetMetadata().GetGeneration() > st.GetObservedGeneration() {
		return "Waiting for deployment spec update to be observed...\n", false, nil
	}
	for _, c := range st.GetConditions() {
		if c.GetType() == "Progressing" && c.GetReason() == progressDeadlineReason {
			return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", name)
		}
	}
	if d.GetSpec().Replicas != nil && st.GetUpdatedReplicas() < d.GetSpec().GetReplicas() {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n", name, st.GetUpdatedReplicas(), d.GetSpec().GetReplicas()), false, nil
	}
	if st.GetReplicas() > st.GetUpdatedReplicas() {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n", name, st.GetReplicas()-st.GetUpdatedReplicas()), false, nil
	}
	if st.GetAvailableReplicas() < st.GetUpdatedReplicas() {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n", name, st.GetAvailableReplicas(), st.GetUpdatedReplicas()), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out\n", name), true, nil
}

func newRolloutStatusCmd(streams IOStreams, f *Factory) *cobra.Command {
	var watch bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "status (TYPE NAME | TYPE/NAME) [flags]",
		Short: "Show the status of the rollout",
		Long: `Show the status of the rollout.

By default waits until the rollout finishes, printing progress as it goes;
exits non-zero if the rollout fails or --timeout passes.`,
		Example: `  # Watch the rollout status of a deployment
  ctl rollout status deployment/web

  # Give up after two minutes
  ctl rollout status deployment/web --timeout=2m`,
		RunE: func(c *cobra.Command, args []string) error {
			t, err := f.rolloutTargetOf(c, args)
			if err != nil {
				return err
			}
			ctx := c.Context()
			if !watch {
				d, err := t.get(ctx)
				if err != nil {
					return err
				}
				msg, _, err := RolloutStatus(d)
				if err != nil {
					return err
				}
				fmt.Fprint(streams.Out, msg)
				return nil
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			err = watchRollout(ctx, streams.Out, t)
			if err != nil && timedOut(c.Context(), ctx, err) {
				return errors.New("timed out waiting for the condition")
			}
			return err
		},
	}
	c.Flags().BoolVarP(&watch, "watch", "w", true, "Watch the status of the rollout until it's done.")
	c.Flags().DurationVar(&timeout, "timeout", 0, "The length of time to wait before ending watch, zero means never. Any other values should contain a corresponding time unit (e.g. 1s, 2m, 3h).")
	return c
}

func deploymentInfo() *kinds.Info {
	info, _ := kinds.ByResource("deployments")
	return info
}

// watchRollout prints each new status message until the rollout is done.
func watchRollout(ctx context.Context, out io.Writer, t *rolloutTarget) error {
	ref := objectRef{info: deploymentInfo(), namespace: t.ns, name: t.name}
	last, first := "", true
	return followRef(t.cl, ref).follow(ctx, func(obj kinds.Object) (bool, error) {
		switch {
		case obj == nil && first:
			return false, notFound(ref)
		case obj == nil:
			return false, fmt.Errorf("deployment %q was deleted during the rollout", t.name)
		}
		first = false
		msg, done, err := RolloutStatus(obj.(*api.Deployment))
		if err != nil {
			return false, err
		}
		if msg != last {
			fmt.Fprint(out, msg)
			last = msg
		}
		return done, nil
	})
}

// revisionOf is a ReplicaSet's deployment revision (0 when unset).
func revisionOf(obj kinds.Object) int64 {
	n, _ := strconv.ParseInt(obj.GetMetadata().GetAnnotations()[printers.RevisionAnnotation], 10, 64)
	return n
}

// revisions maps each revision to its ReplicaSet, newest last.
func revisions(ctx context.Context, cl *client.Client, d *api.Deployment) ([]int64, map[int64]*api.ReplicaSet, error) {
	rss, err := ownedReplicaSets(ctx, cl, d)
	if err != nil {
		return nil, nil, err
	}
	byRev := map[int64]*api.ReplicaSet{}
	var revs []int64
	for _, rs := range rss {
		r := revisionOf(rs)
		if r == 0 {
			continue
		}
		if _, dup := byRev[r]; !dup {
			revs = append(revs, r)
		}
		byRev[r] = rs
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	return revs, byRev, nil
}

func newRolloutHistoryCmd(streams IOStreams, f *Factory) *cobra.Command {
	var revision int64
	c := &cobra.Command{
		Use:   "history (TYPE NAME | TYPE/NAME) [flags]",
		Short: "View rollout history",
		Long:  `View the revisions of a deployment: one per ReplicaSet it has made, from the ReplicaSets' deployment.kubernetes.io/revision annotations.`,
		Example: `  # View the rollout history of a deployment
  ctl rollout history deployment/web

  # View the details of deployment revision 3
  ctl rollout history deployment/web --revision=3`,
		RunE: func(c *cobra.Command, args []string) error {
			t, err := f.rolloutTargetOf(c, args)
			if err != nil {
				return err
			}
			ctx := c.Context()
			d, err := t.get(ctx)
			if err != nil {
				return err
			}
			revs, byRev, err := revisions(ctx, t.cl, d)
			if err != nil {
				return err
			}
			if revision > 0 {
				rs, ok := byRev[revision]
				if !ok {
					return fmt.Errorf("unable to find the specified revision")
				}
				fmt.Fprintf(streams.Out, "deployment.apps/%s with revision #%d\n", t.name, revision)
				printers.DescribePodTemplate(streams.Out, rs.GetSpec().GetTemplate())
				return nil
			}
			fmt.Fprintf(streams.Out, "deployment.apps/%s \n", t.name)
			w := newHistoryWriter(streams.Out)
			fmt.Fprintln(w, "REVISION\tCHANGE-CAUSE")
			for _, r := range revs {
				cause := byRev[r].GetMetadata().GetAnnotations()[changeCauseAnnotation]
				if cause == "" {
					cause = "<none>"
				}
				fmt.Fprintf(w, "%d\t%s\n", r, cause)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(streams.Out)
			return nil
		},
	}
	c.Flags().Int64Var(&revision, "revision", 0, "See the details, including podTemplate of the revision specified")
	return c
}

func newRolloutUndoCmd(streams IOStreams, f *Factory) *cobra.Command {
	var toRevision int64
	c := &cobra.Command{
		Use:   "undo (TYPE NAME | TYPE/NAME) [flags]",
		Short: "Undo a previous rollout",
		Long:  `Roll back to a previous rollout: the deployment's pod template becomes that of the ReplicaSet of the chosen revision (the previous one by default).`,
		Example: `  # Roll back to the previous deployment
  ctl rollout undo deployment/web

  # Roll back to revision 3
  ctl rollout undo deployment/web --to-revision=3`,
		RunE: func(c *cobra.Command, args []string) error {
			t, err := f.rolloutTargetOf(c, args)
			if err != nil {
				return err
			}
			ctx := c.Context()
			skipped := ""
			_, err = t.update(ctx, func(d *api.Deployment) error {
				revs, byRev, err := revisions(ctx, t.cl, d)
				if err != nil {
					return err
				}
				target := toRevision
				if target == 0 {
					if len(revs) < 2 {
						return fmt.Errorf("no rollout history found for deployment %q", t.name)
					}
					target = revs[len(revs)-2]
				}
				rs, ok := byRev[target]
				if !ok {
					return fmt.Errorf("unable to find specified revision %d in history", target)
				}
				tmpl := proto.Clone(rs.GetSpec().GetTemplate()).(*api.PodTemplateSpec)
				delete(tmpl.GetMetadata().GetLabels(), podTemplateHashLabel)
				if proto.Equal(tmpl, d.GetSpec().GetTemplate()) {
					skipped = fmt.Sprintf("deployment.apps/%s skipped rollback (current template already matches revision %d)\n", t.name, target)
					return errNoChange
				}
				d.Spec.Template = tmpl
				return nil
			})
			if err != nil {
				return err
			}
			if skipped != "" {
				fmt.Fprint(streams.Out, skipped)
				return nil
			}
			fmt.Fprintf(streams.Out, "deployment.apps/%s rolled back\n", t.name)
			return nil
		},
	}
	c.Flags().Int64Var(&toRevision, "to-revision", 0, "The revision to rollback to. Default to 0 (last revision).")
	return c
}

func newRolloutRestartCmd(streams IOStreams, f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "restart (TYPE NAME | TYPE/NAME)",
		Short: "Restart a deployment",
		Long:  `Restart a deployment's pods with a rolling update, by stamping its pod template with the kubectl.kubernetes.io/restartedAt annotation.`,
		Example: `  # Restart the pods of deployment web
  ctl rollout restart deployment/web`,
		RunE: func(c *cobra.Command, args []string) error {
			t, err := f.rolloutTargetOf(c, args)
			if err != nil {
				return err
			}
			ctx := c.Context()
			stamp := f.now().Format(time.RFC3339)
			_, err = t.update(ctx, func(d *api.Deployment) error {
				if d.GetSpec().GetPaused() {
					return fmt.Errorf("can't restart paused deployment (run rollout resume first)")
				}
				m := kinds.Meta(d.GetSpec().GetTemplate())
				if m.Annotations == nil {
					m.Annotations = map[string]string{}
				}
				m.Annotations[restartedAtAnnotation] = stamp
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "deployment.apps/%s restarted\n", t.name)
			return nil
		},
	}
}

func newRolloutPauseCmd(streams IOStreams, f *Factory, pause bool) *cobra.Command {
	verb, done := "pause", "paused"
	if !pause {
		verb, done = "resume", "resumed"
	}
	return &cobra.Command{
		Use:     verb + " (TYPE NAME | TYPE/NAME)",
		Short:   "Mark the provided resource as " + done,
		Example: fmt.Sprintf("  # Mark the web deployment as %s\n  ctl rollout %s deployment/web", done, verb),
		RunE: func(c *cobra.Command, args []string) error {
			t, err := f.rolloutTargetOf(c, args)
			if err != nil {
				return err
			}
			ctx := c.Context()
			changed, err := t.update(ctx, func(d *api.Deployment) error {
				d.Spec.Paused = pause
				return nil
			})
			if err != nil {
				return err
			}
			if !changed {
				return fmt.Errorf("deployments.apps %q is already %s", t.name, done)
			}
			fmt.Fprintf(streams.Out, "deployment.apps/%s %s\n", t.name, done)
			return nil
		},
	}
}

// newHistoryWriter is kubectl's tabbed layout for rollout history.
func newHistoryWriter(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
}
