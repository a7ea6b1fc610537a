package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

const (
	// forSyntax is what --for accepts, for help and errors.
	forSyntax = "delete, condition=NAME[=VALUE] or jsonpath='{PATH}'[=VALUE]"
	// waitForever is what a negative --timeout means: a week, as kubectl.
	waitForever = 7 * 24 * time.Hour
)

// errConditionNotMet ends a --timeout=0 wait whose one look failed.
var errConditionNotMet = errors.New("condition not met")

type waitOptions struct {
	objectSelection
	forCondition string
	timeout      time.Duration
}

func newWaitCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &waitOptions{}
	c := &cobra.Command{
		Use:   "wait ([-f FILENAME] | TYPE[/NAME] | TYPE NAME... | TYPE (-l SELECTOR | --all)) [--for=delete|--for=condition=NAME[=VALUE]|--for=jsonpath='{PATH}'[=VALUE]]",
		Short: "Wait for a specific condition on one or many resources",
		Long: `Wait for a specific condition on one or many resources.

The command takes multiple resources and waits until the specified condition
is seen in the Status field of every given resource: a condition of
status.conditions (its type matched case-insensitively, its status True unless
another value is given), or a JSONPath that exists or has a given value.

Alternatively, the command can wait for the given set of resources to be
deleted by providing the "delete" keyword as the value to the --for flag; a
resource already gone counts as deleted.

A message is printed to stdout for each resource once its condition is met.
The resources are watched, not polled; --timeout bounds the whole wait.`,
		Example: `  # Wait for the pod "busybox1" to contain the status condition of type "Ready"
  ctl wait --for=condition=Ready pod/busybox1

  # The default value of status condition is true; you can wait for other targets after an equal delimiter
  ctl wait --for=condition=Ready=false pod/busybox1

  # Wait for every deployment labelled app=web to be available, for up to two minutes
  ctl wait --for=condition=Available deployment -l app=web --timeout=2m

  # Wait for the pod "busybox1" to contain the status phase to be "Running"
  ctl wait --for=jsonpath='{.status.phase}'=Running pod/busybox1

  # Wait for the pod "busybox1" to be given an IP
  ctl wait --for=jsonpath='{.status.podIP}' pod/busybox1

  # Wait for the pod "busybox1" to be deleted, with a timeout of 60s, after having issued the "delete" command
  ctl delete pod/busybox1 --wait=false
  ctl wait --for=delete pod/busybox1 --timeout=60s`,
		ValidArgsFunction: completeResources(f),
		RunE: func(c *cobra.Command, args []string) error {
			return runWait(c, streams, f, o, args)
		},
	}
	o.objectSelection.addFlags(c, "identifying", "Select all resources in the namespace of the specified resource types")
	fl := c.Flags()
	fl.StringVar(&o.forCondition, "for", "", "The condition to wait on: "+forSyntax+". The default condition value is True. Condition types and values are compared case-insensitively; a condition older than the resource's generation is ignored.")
	fl.DurationVar(&o.timeout, "timeout", 30*time.Second, "The length of time to wait before giving up. Zero means check once and don't wait, negative means wait for a week.")
	return c
}

func runWait(c *cobra.Command, streams IOStreams, f *Factory, o *waitOptions, args []string) error {
	cond, err := parseWaitFor(c, o.forCondition)
	if err != nil {
		return err
	}
	if err := o.check(c, args); err != nil {
		return err
	}
	ctx := c.Context()
	cl, err := f.Client(ctx)
	if err != nil {
		return err
	}
	refs, _, err := o.resolve(c, streams, f, cl, args)
	if err != nil {
		return err
	}
	if len(refs) == 0 && !cond.deleted {
		return errors.New("no matching resources found")
	}
	return waitAll(ctx, streams.Out, cl, refs, cond, o.timeout)
}

// waitAll waits for each object in turn, printing each as its condition is
// met; the timeout bounds the whole wait.
func waitAll(ctx context.Context, out io.Writer, cl *client.Client, refs []objectRef, cond waitFor, timeout time.Duration) error {
	if timeout < 0 {
		timeout = waitForever
	}
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	for _, ref := range refs {
		announce, err := waitOne(wctx, cl, ref, cond, timeout == 0)
		switch {
		case errors.Is(err, errConditionNotMet):
			return fmt.Errorf("condition not met for %s", ref.resourcePath())
		case err != nil && timedOut(ctx, wctx, err):
			return fmt.Errorf("timed out waiting for the condition on %s", ref.resourcePath())
		case err != nil:
			return err
		}
		if announce {
			fmt.Fprintf(out, "%s/%s %s\n", printers.QualifiedKind(ref.info), ref.name, cond.verb())
		}
	}
	return nil
}

// waitOne follows one object until cond holds, or with once looks at it
// only once. It reports whether to print the object: like kubectl, a
// delete wait is silent about an object the user named that was already
// gone when it first looked.
func waitOne(ctx context.Context, cl *client.Client, ref objectRef, cond waitFor, once bool) (bool, error) {
	first, goneAtStart := true, false
	uid := ref.uid
	err := followRef(cl, ref).follow(ctx, func(obj kinds.Object) (bool, error) {
		if first {
			first = false
			switch {
			case obj == nil && !cond.deleted:
				return false, notFound(ref)
			case obj == nil:
				goneAtStart = true
			case uid == "":
				uid = obj.GetMetadata().GetUid()
			}
		}
		met, err := cond.met(obj, uid)
		if err == nil && !met && once {
			err = errConditionNotMet
		}
		return met, err
	})
	return !goneAtStart || ref.uid != "", err
}

// waitFor is a parsed --for: the state an object must reach.
type waitFor struct {
	deleted bool
	// check tests an existing object, as kubectl's JSON shows it.
	check func(doc map[string]any) (bool, error)
}

// verb is what kubectl prints after an object whose wait ended.
func (w waitFor) verb() string {
	if w.deleted {
		return "deleted"
	}
	return "condition met"
}

// met reports whether obj (nil when there is none) is in the state waited
// for; a delete wait is also over when the name belongs to an object other
// than uid.
func (w waitFor) met(obj kinds.Object, uid string) (bool, error) {
	if w.deleted {
		return obj == nil || (uid != "" && obj.GetMetadata().GetUid() != uid), nil
	}
	if obj == nil {
		return false, nil // deleted while waited for: it may come back
	}
	doc, err := printers.ToUnstructured(obj)
	if err != nil {
		return false, err
	}
	return w.check(doc)
}

// parseWaitFor reads --for; its errors name the flag, and come before
// anything is sent to the server.
func parseWaitFor(c *cobra.Command, s string) (waitFor, error) {
	if s == "" {
		return waitFor{}, usageErrorf(c, "--for is required: one of %s", forSyntax)
	}
	kind, spec, _ := strings.Cut(s, "=")
	var w waitFor
	var err error
	switch {
	case strings.EqualFold(s, "delete"):
		return waitFor{deleted: true}, nil
	case kind == "condition":
		w, err = conditionWait(spec)
	case kind == "jsonpath":
		w, err = jsonPathWait(spec)
	default:
		err = fmt.Errorf("want one of %s", forSyntax)
	}
	if err != nil {
		return waitFor{}, usageErrorf(c, "invalid --for %q: %v", s, err)
	}
	return w, nil
}

// conditionWait reads NAME[=VALUE] of --for=condition=.
func conditionWait(spec string) (waitFor, error) {
	name, value, hasValue := strings.Cut(spec, "=")
	if !hasValue {
		value = "True"
	}
	switch {
	case name == "":
		return waitFor{}, errors.New("a condition name is required, as in --for=condition=Available")
	case value == "":
		return waitFor{}, errors.New("the condition value after '=' is empty, as in --for=condition=Ready=False")
	}
	return waitFor{check: func(doc map[string]any) (bool, error) {
		return conditionMet(doc, name, value), nil
	}}, nil
}

// conditionMet is kubectl's test: the first status.conditions entry whose
// type is name has status value (both case-insensitive), unless it was
// written for an older generation of the object.
func conditionMet(doc map[string]any, name, value string) bool {
	st, _ := doc["status"].(map[string]any)
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		cond, _ := c.(map[string]any)
		typ, _ := cond["type"].(string)
		got, ok := cond["status"].(string)
		if !ok || !strings.EqualFold(typ, name) {
			continue
		}
		return !staleCondition(doc, cond) && strings.EqualFold(got, value)
	}
	return false
}

// staleCondition reports a condition observed at an older generation than
// the object's: from the condition's observedGeneration, else the status'.
func staleCondition(doc, cond map[string]any) bool {
	meta, _ := doc["metadata"].(map[string]any)
	st, _ := doc["status"].(map[string]any)
	gen, ok := jsonInt(meta["generation"])
	if !ok {
		return false
	}
	observed, ok := jsonInt(cond["observedGeneration"])
	if !ok {
		observed, ok = jsonInt(st["observedGeneration"])
	}
	return ok && observed < gen
}

func jsonInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// jsonPathWait reads PATH[=VALUE] of --for=jsonpath=: without a value the
// path must find something, with one it must find exactly that value.
func jsonPathWait(spec string) (waitFor, error) {
	path, value, hasValue := splitJSONPathFor(spec)
	if path == "" {
		return waitFor{}, errors.New("jsonpath expression cannot be empty, as in --for=jsonpath='{.status.readyReplicas}'=3")
	}
	if hasValue {
		value = strings.Trim(value, `'"`)
		if value == "" {
			return waitFor{}, errors.New("jsonpath wait has to have a value after equal sign, like --for=jsonpath='{.status.readyReplicas}'=3")
		}
	}
	jp, err := printers.ParseJSONPath("wait", path)
	if err != nil {
		return waitFor{}, err
	}
	return waitFor{check: func(doc map[string]any) (bool, error) {
		results, err := jp.FindResults(doc)
		if err != nil {
			return false, fmt.Errorf("jsonpath %s: %w", path, err)
		}
		if len(results) == 0 || len(results[0]) == 0 {
			return false, nil
		}
		if len(results) > 1 || len(results[0]) > 1 {
			return false, fmt.Errorf("jsonpath %s matches more than one value", path)
		}
		found := results[0][0].Interface()
		switch found.(type) {
		case map[string]any, []any:
			if hasValue {
				return false, fmt.Errorf("jsonpath %s leads to a nested object or list, which cannot be compared with a value", path)
			}
		}
		return !hasValue || strings.TrimSpace(fmt.Sprint(found)) == strings.TrimSpace(value), nil
	}}, nil
}

// splitJSONPathFor splits "PATH=VALUE" at the first '=' outside braces,
// brackets and parentheses, so that a filter such as
// {.status.conditions[?(@.type=="Ready")].status}=True keeps its "==".
func splitJSONPathFor(spec string) (path, value string, hasValue bool) {
	depth := 0
	for i, r := range spec {
		switch r {
		case '{', '[', '(':
			depth++
		case '}', ']', ')':
			depth--
		case '=':
			if depth == 0 {
				return spec[:i], spec[i+1:], true
			}
		}
	}
	return spec, "", false
}
