package printers

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/ctl/manifest"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Described is what describe shows for one object: the object, its events
// and the objects around it that kubectl's describers also show.
type Described struct {
	Object kinds.Object
	Events []*api.Event
	// ReplicaSets are a Deployment's, for OldReplicaSets/NewReplicaSet.
	ReplicaSets []*api.ReplicaSet
	// Pods are a ReplicaSet's (for Pods Status) or a Node's (Non-terminated Pods).
	Pods []*api.Pod
	// Endpoints are a Service's.
	Endpoints *api.Endpoints
}

// timeFormat is kubectl describe's timestamp layout (RFC 1123 with a
// numeric zone).
const timeFormat = time.RFC1123Z

// describeWriter writes kubectl's indented "Key:\tvalue" lines through one
// tab writer, so values line up across a block as in kubectl.
type describeWriter struct {
	tw *tabwriter.Writer
}

func newDescribeWriter(out io.Writer) *describeWriter {
	return &describeWriter{tw: tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)}
}

func (w *describeWriter) line(level int, format string, args ...any) {
	fmt.Fprintf(w.tw, strings.Repeat("  ", level)+format+"\n", args...)
}

func (w *describeWriter) flush() { _ = w.tw.Flush() }

func ts(t *timestamppb.Timestamp) string {
	if t == nil {
		return "<unknown>"
	}
	return t.AsTime().Format(timeFormat)
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// multiline prints a map under a title, one "k=v" (or "k: v") per line.
func (w *describeWriter) multiline(level int, title string, m map[string]string, sep string, skip ...string) {
	keys := sortedKeys(m)
	keys = slicesDelete(keys, skip)
	indent := strings.Repeat("  ", level)
	if len(keys) == 0 {
		fmt.Fprintf(w.tw, "%s%s:\t<none>\n", indent, title)
		return
	}
	for i, k := range keys {
		if i == 0 {
			fmt.Fprintf(w.tw, "%s%s:\t%s%s%s\n", indent, title, k, sep, m[k])
		} else {
			fmt.Fprintf(w.tw, "%s\t%s%s%s\n", indent, k, sep, m[k])
		}
	}
}

func slicesDelete(keys []string, skip []string) []string {
	out := keys[:0]
	for _, k := range keys {
		keep := true
		for _, s := range skip {
			if k == s {
				keep = false
			}
		}
		if keep {
			out = append(out, k)
		}
	}
	return out
}

func (w *describeWriter) meta(m *api.ObjectMeta, namespaced bool) {
	w.line(0, "Name:\t%s", m.GetName())
	if namespaced {
		w.line(0, "Namespace:\t%s", m.GetNamespace())
	}
}

func (w *describeWriter) labelsAndAnnotations(m *api.ObjectMeta) {
	w.multiline(0, "Labels", m.GetLabels(), "=")
	w.multiline(0, "Annotations", m.GetAnnotations(), ": ", manifest.LastAppliedAnnotation)
}

func controlledBy(m *api.ObjectMeta) string {
	for _, o := range m.GetOwnerReferences() {
		if o.GetController() {
			return o.GetKind() + "/" + o.GetName()
		}
	}
	return ""
}

// Describe writes kubectl describe's text for d.
func Describe(out io.Writer, d Described, now time.Time) error {
	w := newDescribeWriter(out)
	switch o := d.Object.(type) {
	case *api.Pod:
		describePod(w, o, now)
	case *api.Deployment:
		describeDeployment(w, o, d.ReplicaSets)
	case *api.ReplicaSet:
		describeReplicaSet(w, o, d.Pods)
	case *api.Service:
		describeService(w, o, d.Endpoints)
	case *api.Node:
		describeNode(w, o, d.Pods, now)
	case *api.Namespace:
		w.meta(o.GetMetadata(), false)
		w.labelsAndAnnotations(o.GetMetadata())
		w.line(0, "Status:\t%s", o.GetStatus().GetPhase())
		w.line(0, "")
		w.line(0, "No resource quota.")
		w.line(0, "")
		w.line(0, "No LimitRange resource.")
		w.flush()
		return nil
	case *api.Endpoints:
		describeEndpoints(w, o)
	case *api.ConfigMap:
		describeConfigMap(w, out, o)
	case *api.Secret:
		// kubectl shows no events for a Secret.
		describeSecret(w, o)
		w.flush()
		return nil
	default:
		if err := describeGeneric(w, d.Object); err != nil {
			return err
		}
	}
	describeEvents(w, d.Events, now)
	w.flush()
	return nil
}

func describeEvents(w *describeWriter, events []*api.Event, now time.Time) {
	if len(events) == 0 {
		w.line(0, "Events:\t<none>")
		return
	}
	w.flush()
	sorted := append([]*api.Event(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return lastSeen(sorted[i]).Before(lastSeen(sorted[j]))
	})
	w.line(0, "Events:")
	w.line(1, "Type\tReason\tAge\tFrom\tMessage")
	w.line(1, "----\t------\t----\t----\t-------")
	for _, e := range sorted {
		first := Age(e.GetFirstTimestamp(), now)
		interval := first
		if e.GetCount() > 1 {
			interval = fmt.Sprintf("%s (x%d over %s)", Age(e.GetLastTimestamp(), now), e.GetCount(), first)
		}
		source := e.GetSource().GetComponent()
		if source == "" {
			source = e.GetReportingComponent()
		}
		w.line(1, "%s\t%s\t%s\t%s\t%s", e.GetType(), e.GetReason(), interval, source, strings.TrimSpace(e.GetMessage()))
	}
}

func lastSeen(e *api.Event) time.Time {
	if e.GetLastTimestamp() != nil {
		return e.GetLastTimestamp().AsTime()
	}
	return e.GetFirstTimestamp().AsTime()
}

func describePod(w *describeWriter, p *api.Pod, now time.Time) {
	m, spec, st := p.GetMetadata(), p.GetSpec(), p.GetStatus()
	w.meta(m, true)
	w.line(0, "Priority:\t%d", spec.GetPriority())
	w.line(0, "Service Account:\t%s", orNone(spec.GetServiceAccountName()))
	node := "<none>"
	if spec.GetNodeName() != "" {
		node = spec.GetNodeName()
		if st.GetHostIp() != "" {
			node += "/" + st.GetHostIp()
		}
	}
	w.line(0, "Node:\t%s", node)
	if st.GetStartTime() != nil {
		w.line(0, "Start Time:\t%s", ts(st.GetStartTime()))
	}
	w.labelsAndAnnotations(m)
	if m.GetDeletionTimestamp() != nil {
		w.line(0, "Status:\tTerminating (lasts %s)", Age(m.GetDeletionTimestamp(), now))
		w.line(0, "Termination Grace Period:\t%ds", m.GetDeletionGracePeriodSeconds())
	} else {
		w.line(0, "Status:\t%s", st.GetPhase())
	}
	if st.GetReason() != "" {
		w.line(0, "Reason:\t%s", st.GetReason())
	}
	if st.GetMessage() != "" {
		w.line(0, "Message:\t%s", st.GetMessage())
	}
	ip := st.GetPodIp()
	ips := st.GetPodIps()
	if len(ips) > 0 {
		ip = ips[0].GetIp()
	}
	w.line(0, "IP:\t%s", ip)
	if len(ips) == 0 && ip != "" {
		ips = []*api.PodIP{{Ip: ip}}
	}
	if len(ips) == 0 {
		w.line(0, "IPs:\t<none>")
	} else {
		w.line(0, "IPs:")
		for _, i := range ips {
			w.line(1, "IP:\t%s", i.GetIp())
		}
	}
	if c := controlledBy(m); c != "" {
		w.line(0, "Controlled By:\t%s", c)
	}
	if len(spec.GetInitContainers()) > 0 {
		w.line(0, "Init Containers:")
		describeContainers(w, spec.GetInitContainers(), st.GetInitContainerStatuses(), false)
	}
	w.line(0, "Containers:")
	describeContainers(w, spec.GetContainers(), st.GetContainerStatuses(), false)
	if len(spec.GetReadinessGates()) > 0 {
		w.line(0, "Readiness Gates:")
		w.line(1, "Type\tStatus")
		for _, g := range spec.GetReadinessGates() {
			status := "<none>"
			for _, c := range st.GetConditions() {
				if c.GetType() == g.GetConditionType() {
					status = c.GetStatus()
				}
			}
			w.line(1, "%s\t%s", g.GetConditionType(), status)
		}
	}
	if len(st.GetConditions()) > 0 {
		w.line(0, "Conditions:")
		w.line(1, "Type\tStatus")
		for _, c := range st.GetConditions() {
			w.line(1, "%s \t%s ", c.GetType(), c.GetStatus())
		}
	}
	describeVolumes(w, spec.GetVolumes(), 0)
	w.line(0, "QoS Class:\t%s", orNone(st.GetQosClass()))
	var sel []string
	for _, k := range sortedKeys(spec.GetNodeSelector()) {
		sel = append(sel, k+"="+spec.GetNodeSelector()[k])
	}
	w.line(0, "Node-Selectors:\t%s", orNone(strings.Join(sel, ",")))
	if len(spec.GetTolerations()) == 0 {
		w.line(0, "Tolerations:\t<none>")
	} else {
		for i, t := range spec.GetTolerations() {
			title := "Tolerations:"
			if i > 0 {
				title = ""
			}
			w.line(0, "%s\t%s", title, toleration(t))
		}
	}
}

// toleration is kubectl's one-line form: key=value:effect op=Exists for Ns.
func toleration(t *api.Toleration) string {
	s := t.GetKey()
	if t.GetValue() != "" {
		s += "=" + t.GetValue()
	}
	if t.GetEffect() != "" {
		s += ":" + t.GetEffect()
	}
	if t.GetOperator() == "Exists" && t.GetValue() == "" {
		if s != "" {
			s += " "
		}
		s += "op=Exists"
	}
	if t.TolerationSeconds != nil {
		s += fmt.Sprintf(" for %ds", t.GetTolerationSeconds())
	}
	return s
}

// describeContainers prints containers as kubectl does: names at the
// first level (one space deeper in pod templates), details at the second.
func describeContainers(w *describeWriter, cs []*api.Container, statuses []*api.ContainerStatus, template bool) {
	const level = 1
	namePrefix := ""
	if template {
		namePrefix = " "
	}
	byName := map[string]*api.ContainerStatus{}
	for _, s := range statuses {
		byName[s.GetName()] = s
	}
	for _, c := range cs {
		st, hasStatus := byName[c.GetName()]
		w.line(level, "%s%s:", namePrefix, c.GetName())
		l := level + 1
		if hasStatus {
			w.line(l, "Container ID:\t%s", st.GetContainerId())
		}
		w.line(l, "Image:\t%s", c.GetImage())
		if hasStatus {
			w.line(l, "Image ID:\t%s", st.GetImageId())
		}
		describePorts(w, c.GetPorts(), l)
		if len(c.GetCommand()) > 0 {
			w.line(l, "Command:")
			for _, a := range c.GetCommand() {
				w.line(l+1, "%s", a)
			}
		}
		if len(c.GetArgs()) > 0 {
			w.line(l, "Args:")
			for _, a := range c.GetArgs() {
				w.line(l+1, "%s", a)
			}
		}
		if hasStatus {
			describeState(w, "State", st.GetState(), l)
			if st.GetLastState().GetTerminated() != nil || st.GetLastState().GetWaiting() != nil || st.GetLastState().GetRunning() != nil {
				describeState(w, "Last State", st.GetLastState(), l)
			}
			w.line(l, "Ready:\t%s", titleBool(st.GetReady()))
			w.line(l, "Restart Count:\t%d", st.GetRestartCount())
		}
		describeResources(w, "Limits", c.GetResources().GetLimits(), l)
		describeResources(w, "Requests", c.GetResources().GetRequests(), l)
		describeProbe(w, "Liveness", c.GetLivenessProbe(), l)
		describeProbe(w, "Readiness", c.GetReadinessProbe(), l)
		describeProbe(w, "Startup", c.GetStartupProbe(), l)
		if len(c.GetEnv()) == 0 {
			w.line(l, "Environment:\t<none>")
		} else {
			w.line(l, "Environment:")
			for _, e := range c.GetEnv() {
				w.line(l+1, "%s:\t%s", e.GetName(), e.GetValue())
			}
		}
		if len(c.GetVolumeMounts()) == 0 {
			w.line(l, "Mounts:\t<none>")
		} else {
			w.line(l, "Mounts:")
			for _, m := range c.GetVolumeMounts() {
				mode := "rw"
				if m.GetReadOnly() {
					mode = "ro"
				}
				w.line(l+1, "%s from %s (%s)", m.GetMountPath(), m.GetName(), mode)
			}
		}
	}
}

func titleBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func describePorts(w *describeWriter, ports []*api.ContainerPort, level int) {
	if len(ports) == 0 {
		w.line(level, "Port:\t<none>")
		w.line(level, "Host Port:\t<none>")
		return
	}
	var p, hp []string
	for _, port := range ports {
		p = append(p, fmt.Sprintf("%d/%s", port.GetContainerPort(), orDefault(port.GetProtocol(), "TCP")))
		hp = append(hp, fmt.Sprintf("%d/%s", port.GetHostPort(), orDefault(port.GetProtocol(), "TCP")))
	}
	title := "Port"
	if len(ports) > 1 {
		title = "Ports"
	}
	w.line(level, "%s:\t%s", title, strings.Join(p, ", "))
	w.line(level, "Host %s:\t%s", title, strings.Join(hp, ", "))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func describeState(w *describeWriter, title string, s *api.ContainerState, level int) {
	switch {
	case s.GetRunning() != nil:
		w.line(level, "%s:\tRunning", title)
		w.line(level+1, "Started:\t%s", ts(s.GetRunning().GetStartedAt()))
	case s.GetWaiting() != nil:
		w.line(level, "%s:\tWaiting", title)
		if r := s.GetWaiting().GetReason(); r != "" {
			w.line(level+1, "Reason:\t%s", r)
		}
		if m := s.GetWaiting().GetMessage(); m != "" {
			w.line(level+1, "Message:\t%s", m)
		}
	case s.GetTerminated() != nil:
		t := s.GetTerminated()
		w.line(level, "%s:\tTerminated", title)
		if t.GetReason() != "" {
			w.line(level+1, "Reason:\t%s", t.GetReason())
		}
		if t.GetMessage() != "" {
			w.line(level+1, "Message:\t%s", t.GetMessage())
		}
		w.line(level+1, "Exit Code:\t%d", t.GetExitCode())
		if t.GetSignal() != 0 {
			w.line(level+1, "Signal:\t%d", t.GetSignal())
		}
		w.line(level+1, "Started:\t%s", ts(t.GetStartedAt()))
		w.line(level+1, "Finished:\t%s", ts(t.GetFinishedAt()))
	default:
		w.line(level, "%s:\tWaiting", title)
	}
}

func describeResources(w *describeWriter, title string, m map[string]string, level int) {
	if len(m) == 0 {
		return
	}
	w.line(level, "%s:", title)
	for _, k := range sortedKeys(m) {
		w.line(level+1, "%s:\t%s", k, m[k])
	}
}

func describeProbe(w *describeWriter, title string, p *api.Probe, level int) {
	if p == nil {
		return
	}
	var action string
	switch {
	case p.GetExec() != nil:
		action = "exec " + fmt.Sprint(p.GetExec().GetCommand())
	case p.GetHttpGet() != nil:
		h := p.GetHttpGet()
		action = fmt.Sprintf("http-get %s://%s:%s%s", strings.ToLower(orDefault(h.GetScheme(), "HTTP")), h.GetHost(), intOrString(h.GetPort()), h.GetPath())
	case p.GetTcpSocket() != nil:
		action = fmt.Sprintf("tcp-socket %s:%s", p.GetTcpSocket().GetHost(), intOrString(p.GetTcpSocket().GetPort()))
	default:
		action = "unknown"
	}
	w.line(level, "%s:\t%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", title, action,
		p.GetInitialDelaySeconds(), p.GetTimeoutSeconds(), p.GetPeriodSeconds(), p.GetSuccessThreshold(), p.GetFailureThreshold())
}

// intOrString prints an IntOrString field ("8080" or "http").
func intOrString(v *structpb.Value) string {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return fmt.Sprint(int64(k.NumberValue))
	case *structpb.Value_StringValue:
		return k.StringValue
	}
	return "<none>"
}

func describeVolumes(w *describeWriter, vols []*api.Volume, level int) {
	if len(vols) == 0 {
		w.line(level, "Volumes:\t<none>")
		return
	}
	w.line(level, "Volumes:")
	for _, v := range vols {
		w.line(level+1, "%s:", v.GetName())
		l := level + 2
		switch {
		case v.GetEmptyDir() != nil:
			w.line(l, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)")
			w.line(l, "Medium:\t%s", v.GetEmptyDir().GetMedium())
			w.line(l, "SizeLimit:\t%s", orDefault(v.GetEmptyDir().GetSizeLimit(), "<unset>"))
		case v.GetHostPath() != nil:
			w.line(l, "Type:\tHostPath (bare host directory volume)")
			w.line(l, "Path:\t%s", v.GetHostPath().GetPath())
			w.line(l, "HostPathType:\t%s", v.GetHostPath().GetType())
		case v.GetConfigMap() != nil:
			w.line(l, "Type:\tConfigMap (a volume populated by a ConfigMap)")
			w.line(l, "Name:\t%s", v.GetConfigMap().GetName())
		case v.GetSecret() != nil:
			w.line(l, "Type:\tSecret (a volume populated by a Secret)")
			w.line(l, "SecretName:\t%s", v.GetSecret().GetSecretName())
		}
	}
}

func describePodTemplate(w *describeWriter, t *api.PodTemplateSpec) {
	w.line(0, "Pod Template:")
	w.multiline(1, "Labels", t.GetMetadata().GetLabels(), "=")
	if len(t.GetMetadata().GetAnnotations()) > 0 {
		w.multiline(1, "Annotations", t.GetMetadata().GetAnnotations(), ": ")
	}
	if len(t.GetSpec().GetInitContainers()) > 0 {
		w.line(1, "Init Containers:")
		describeContainers(w, t.GetSpec().GetInitContainers(), nil, true)
	}
	w.line(1, "Containers:")
	describeContainers(w, t.GetSpec().GetContainers(), nil, true)
	describeVolumes(w, t.GetSpec().GetVolumes(), 1)
	var sel []string
	for _, k := range sortedKeys(t.GetSpec().GetNodeSelector()) {
		sel = append(sel, k+"="+t.GetSpec().GetNodeSelector()[k])
	}
	w.line(1, "Node-Selectors:\t%s", orNone(strings.Join(sel, ",")))
	if len(t.GetSpec().GetTolerations()) == 0 {
		w.line(1, "Tolerations:\t<none>")
	} else {
		for i, tol := range t.GetSpec().GetTolerations() {
			title := "Tolerations:"
			if i > 0 {
				title = ""
			}
			w.line(1, "%s\t%s", title, toleration(tol))
		}
	}
}

func describeConditions(w *describeWriter, conds []*api.Condition) {
	if len(conds) == 0 {
		return
	}
	w.line(0, "Conditions:")
	w.line(1, "Type\tStatus\tReason")
	w.line(1, "----\t------\t------")
	for _, c := range conds {
		w.line(1, "%s \t%s\t%s", c.GetType(), c.GetStatus(), c.GetReason())
	}
}

// RevisionAnnotation is the revision the deployment controller gives each
// of a Deployment's ReplicaSets (and the Deployment itself).
const RevisionAnnotation = "deployment.kubernetes.io/revision"

func describeDeployment(w *describeWriter, d *api.Deployment, rss []*api.ReplicaSet) {
	m, spec, st := d.GetMetadata(), d.GetSpec(), d.GetStatus()
	w.meta(m, true)
	w.line(0, "CreationTimestamp:\t%s", ts(m.GetCreationTimestamp()))
	w.labelsAndAnnotations(m)
	w.line(0, "Selector:\t%s", SelectorString(spec.GetSelector()))
	w.line(0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable",
		spec.GetReplicas(), st.GetUpdatedReplicas(), st.GetReplicas(), st.GetAvailableReplicas(), st.GetUnavailableReplicas())
	strategy := orDefault(spec.GetStrategy().GetType(), "RollingUpdate")
	w.line(0, "StrategyType:\t%s", strategy)
	w.line(0, "MinReadySeconds:\t%d", spec.GetMinReadySeconds())
	if ru := spec.GetStrategy().GetRollingUpdate(); strategy == "RollingUpdate" && ru != nil {
		w.line(0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge", intOrString(ru.GetMaxUnavailable()), intOrString(ru.GetMaxSurge()))
	}
	describePodTemplate(w, spec.GetTemplate())
	describeConditions(w, st.GetConditions())
	newRS, old := splitReplicaSets(d, rss)
	var oldNames []string
	for _, rs := range old {
		oldNames = append(oldNames, fmt.Sprintf("%s (%d/%d replicas created)", rs.GetMetadata().GetName(), rs.GetStatus().GetReplicas(), rs.GetSpec().GetReplicas()))
	}
	w.line(0, "OldReplicaSets:\t%s", orNone(strings.Join(oldNames, ", ")))
	if newRS != nil {
		w.line(0, "NewReplicaSet:\t%s (%d/%d replicas created)", newRS.GetMetadata().GetName(), newRS.GetStatus().GetReplicas(), newRS.GetSpec().GetReplicas())
	} else {
		w.line(0, "NewReplicaSet:\t<none>")
	}
}

// splitReplicaSets finds a Deployment's current ReplicaSet (the one with the
// highest revision) and the old ones that still have replicas.
func splitReplicaSets(d *api.Deployment, rss []*api.ReplicaSet) (*api.ReplicaSet, []*api.ReplicaSet) {
	var newRS *api.ReplicaSet
	rev := d.GetMetadata().GetAnnotations()[RevisionAnnotation]
	for _, rs := range rss {
		if rev != "" && rs.GetMetadata().GetAnnotations()[RevisionAnnotation] == rev {
			newRS = rs
		}
	}
	if newRS == nil {
		best := -1
		for _, rs := range rss {
			var n int
			fmt.Sscan(rs.GetMetadata().GetAnnotations()[RevisionAnnotation], &n)
			if n > best {
				best, newRS = n, rs
			}
		}
	}
	var old []*api.ReplicaSet
	for _, rs := range rss {
		if rs != newRS && (rs.GetSpec().GetReplicas() > 0 || rs.GetStatus().GetReplicas() > 0) {
			old = append(old, rs)
		}
	}
	return newRS, old
}

func describeReplicaSet(w *describeWriter, rs *api.ReplicaSet, pods []*api.Pod) {
	m, spec, st := rs.GetMetadata(), rs.GetSpec(), rs.GetStatus()
	w.meta(m, true)
	w.line(0, "Selector:\t%s", SelectorString(spec.GetSelector()))
	w.multiline(0, "Labels", m.GetLabels(), "=")
	w.multiline(0, "Annotations", m.GetAnnotations(), ": ", manifest.LastAppliedAnnotation)
	if c := controlledBy(m); c != "" {
		w.line(0, "Controlled By:\t%s", c)
	}
	w.line(0, "Replicas:\t%d current / %d desired", st.GetReplicas(), spec.GetReplicas())
	counts := map[string]int{}
	for _, p := range pods {
		counts[p.GetStatus().GetPhase()]++
	}
	w.line(0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed", counts["Running"], counts["Pending"], counts["Succeeded"], counts["Failed"])
	describePodTemplate(w, spec.GetTemplate())
	describeConditions(w, st.GetConditions())
}

func describeService(w *describeWriter, s *api.Service, ep *api.Endpoints) {
	m, spec := s.GetMetadata(), s.GetSpec()
	w.meta(m, true)
	w.labelsAndAnnotations(m)
	var sel []string
	for _, k := range sortedKeys(spec.GetSelector()) {
		sel = append(sel, k+"="+spec.GetSelector()[k])
	}
	w.line(0, "Selector:\t%s", orNone(strings.Join(sel, ",")))
	w.line(0, "Type:\t%s", spec.GetType())
	w.line(0, "IP Family Policy:\tSingleStack")
	w.line(0, "IP Families:\tIPv4")
	w.line(0, "IP:\t%s", spec.GetClusterIp())
	ips := spec.GetClusterIps()
	if len(ips) == 0 && spec.GetClusterIp() != "" {
		ips = []string{spec.GetClusterIp()}
	}
	w.line(0, "IPs:\t%s", orNone(strings.Join(ips, ",")))
	if len(spec.GetExternalIps()) > 0 {
		w.line(0, "External IPs:\t%s", strings.Join(spec.GetExternalIps(), ","))
	}
	for _, p := range spec.GetPorts() {
		name := orDefault(p.GetName(), "<unset>")
		w.line(0, "Port:\t%s\t%d/%s", name, p.GetPort(), p.GetProtocol())
		w.line(0, "TargetPort:\t%s/%s", intOrString(p.GetTargetPort()), p.GetProtocol())
		if p.GetNodePort() != 0 {
			w.line(0, "NodePort:\t%s\t%d/%s", name, p.GetNodePort(), p.GetProtocol())
		}
		w.line(0, "Endpoints:\t%s", endpointsForPort(ep, p))
	}
	w.line(0, "Session Affinity:\t%s", orDefault(spec.GetSessionAffinity(), "None"))
	if spec.GetType() == "NodePort" {
		w.line(0, "External Traffic Policy:\t%s", orDefault(spec.GetExternalTrafficPolicy(), "Cluster"))
	}
}

func endpointsForPort(ep *api.Endpoints, p *api.ServicePort) string {
	var list []string
	for _, ss := range ep.GetSubsets() {
		for _, port := range ss.GetPorts() {
			if port.GetName() != p.GetName() {
				continue
			}
			for _, a := range ss.GetAddresses() {
				list = append(list, fmt.Sprintf("%s:%d", a.GetIp(), port.GetPort()))
			}
		}
	}
	return strings.Join(list, ",")
}

func describeEndpoints(w *describeWriter, e *api.Endpoints) {
	m := e.GetMetadata()
	w.meta(m, true)
	w.labelsAndAnnotations(m)
	w.line(0, "Subsets:")
	for _, ss := range e.GetSubsets() {
		var ready, notReady []string
		for _, a := range ss.GetAddresses() {
			ready = append(ready, a.GetIp())
		}
		for _, a := range ss.GetNotReadyAddresses() {
			notReady = append(notReady, a.GetIp())
		}
		w.line(1, "Addresses:\t%s", orNone(strings.Join(ready, ",")))
		w.line(1, "NotReadyAddresses:\t%s", orNone(strings.Join(notReady, ",")))
		if len(ss.GetPorts()) > 0 {
			w.line(1, "Ports:")
			w.line(2, "Name\tPort\tProtocol")
			w.line(2, "----\t----\t--------")
			for _, p := range ss.GetPorts() {
				w.line(2, "%s\t%d\t%s", orDefault(p.GetName(), "<unset>"), p.GetPort(), p.GetProtocol())
			}
		}
		w.line(0, "")
	}
}

func describeNode(w *describeWriter, n *api.Node, pods []*api.Pod, now time.Time) {
	m, spec, st := n.GetMetadata(), n.GetSpec(), n.GetStatus()
	w.line(0, "Name:\t%s", m.GetName())
	w.line(0, "Roles:\t%s", orNone(strings.Join(NodeRoles(n), ",")))
	w.labelsAndAnnotations(m)
	w.line(0, "CreationTimestamp:\t%s", ts(m.GetCreationTimestamp()))
	if len(spec.GetTaints()) == 0 {
		w.line(0, "Taints:\t<none>")
	} else {
		for i, t := range spec.GetTaints() {
			title := "Taints:"
			if i > 0 {
				title = ""
			}
			s := t.GetKey()
			if t.GetValue() != "" {
				s += "=" + t.GetValue()
			}
			w.line(0, "%s\t%s:%s", title, s, t.GetEffect())
		}
	}
	w.line(0, "Unschedulable:\t%v", spec.GetUnschedulable())
	w.flush()
	if len(st.GetConditions()) > 0 {
		w.line(0, "Conditions:")
		w.line(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
		w.line(1, "----\t------\t-----------------\t------------------\t------\t-------")
		for _, c := range st.GetConditions() {
			w.line(1, "%s \t%s \t%s \t%s \t%s \t%s", c.GetType(), c.GetStatus(), ts(c.GetLastHeartbeatTime()), ts(c.GetLastTransitionTime()), c.GetReason(), c.GetMessage())
		}
	}
	w.line(0, "Addresses:")
	for _, a := range st.GetAddresses() {
		w.line(1, "%s:\t%s", a.GetType(), a.GetAddress())
	}
	describeResources(w, "Capacity", st.GetCapacity(), 0)
	describeResources(w, "Allocatable", st.GetAllocatable(), 0)
	info := st.GetNodeInfo()
	w.line(0, "System Info:")
	w.line(1, "Machine ID:\t%s", info.GetMachineId())
	w.line(1, "Kernel Version:\t%s", info.GetKernelVersion())
	w.line(1, "OS Image:\t%s", info.GetOsImage())
	w.line(1, "Operating System:\t%s", info.GetOperatingSystem())
	w.line(1, "Architecture:\t%s", info.GetArchitecture())
	w.line(1, "Container Runtime Version:\t%s", info.GetContainerRuntimeVersion())
	w.line(1, "Kubelet Version:\t%s", info.GetKubeletVersion())
	if spec.GetPodCidr() != "" {
		w.line(0, "PodCIDR:\t%s", spec.GetPodCidr())
		w.line(0, "PodCIDRs:\t%s", strings.Join(append([]string{}, orList(spec.GetPodCidrs(), spec.GetPodCidr())...), ","))
	}
	w.flush()
	var live []*api.Pod
	for _, p := range pods {
		if ph := p.GetStatus().GetPhase(); ph != "Succeeded" && ph != "Failed" {
			live = append(live, p)
		}
	}
	w.line(0, "Non-terminated Pods:\t(%d in total)", len(live))
	if len(live) > 0 {
		w.line(1, "Namespace\tName\tAge")
		w.line(1, "---------\t----\t---")
		for _, p := range live {
			w.line(1, "%s\t%s\t%s", p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(), Age(p.GetMetadata().GetCreationTimestamp(), now))
		}
	}
}

func orList(l []string, one string) []string {
	if len(l) > 0 {
		return l
	}
	return []string{one}
}

// describeGeneric prints metadata and the rest of the object as YAML for
// kinds without their own describer.
func describeGeneric(w *describeWriter, obj kinds.Object) error {
	info, err := kinds.For(obj)
	if err != nil {
		return err
	}
	m := obj.GetMetadata()
	w.meta(m, info.Namespaced)
	w.labelsAndAnnotations(m)
	tree, err := ToUnstructured(obj)
	if err != nil {
		return err
	}
	for _, k := range []string{"apiVersion", "kind", "metadata"} {
		delete(tree, k)
	}
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.flush()
	for _, k := range keys {
		y, err := manifest.MarshalYAML(map[string]any{k: tree[k]})
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
			// YAML lines may hold tabs; keep them away from the tab writer.
			fmt.Fprintln(w.tw, strings.ReplaceAll(cases(line), "\t", " "))
		}
	}
	return nil
}

// cases turns a YAML top-level key ("data:") into describe's title case
// ("Data:").
func cases(line string) string {
	if line == "" || line[0] == ' ' || line[0] == '-' {
		return line
	}
	return strings.ToUpper(line[:1]) + line[1:]
}

// DescribePodTemplate writes a pod template as describe shows it (rollout
// history --revision).
func DescribePodTemplate(out io.Writer, t *api.PodTemplateSpec) {
	w := newDescribeWriter(out)
	describePodTemplate(w, t)
	w.flush()
}
