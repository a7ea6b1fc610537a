package admission

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func deployment(mutate func(*api.Deployment)) func() kinds.Object {
	return with(validDeployment, mutate)
}

func rollingUpdate(d *api.Deployment) *api.RollingUpdateDeployment {
	return d.Spec.Strategy.RollingUpdate
}

func TestValidateDeployment(t *testing.T) {
	runRules(t, []rule{
		{"valid deployment", deployment(nil), "", ""},
		{"replicas not negative", deployment(func(d *api.Deployment) { d.Spec.Replicas = proto.Int32(-1) }), "spec.replicas", invalidT},
		{"zero replicas allowed", deployment(func(d *api.Deployment) { d.Spec.Replicas = proto.Int32(0) }), "", ""},
		{"selector required", deployment(func(d *api.Deployment) { d.Spec.Selector = nil }), "spec.selector", required},
		{"selector not empty", deployment(func(d *api.Deployment) { d.Spec.Selector = &api.LabelSelector{} }), "spec.selector", invalidT},
		{"selector must match template labels", deployment(func(d *api.Deployment) { d.Spec.Template.Metadata.Labels["app"] = "api" }), "spec.template.metadata.labels", invalidT},
		{"template without labels does not match", deployment(func(d *api.Deployment) { d.Spec.Template.Metadata = nil }), "spec.template.metadata.labels", invalidT},
		{"selector expressions match", deployment(func(d *api.Deployment) {
			d.Spec.Selector.MatchExpressions = []*api.LabelSelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"front", "back"}}, {Key: "canary", Operator: "DoesNotExist"}}
		}), "", ""},
		{"selector expression must match", deployment(func(d *api.Deployment) {
			d.Spec.Selector.MatchExpressions = []*api.LabelSelectorRequirement{{Key: "tier", Operator: "NotIn", Values: []string{"front"}}}
		}), "spec.template.metadata.labels", invalidT},
		{"selector label syntax", deployment(func(d *api.Deployment) { d.Spec.Selector.MatchLabels["tier"] = "-front" }), "spec.selector.matchLabels", invalidT},
		{"selector expression operator", deployment(func(d *api.Deployment) {
			d.Spec.Selector.MatchExpressions = []*api.LabelSelectorRequirement{{Key: "tier", Operator: "Like", Values: []string{"front"}}}
		}), "spec.selector.matchExpressions[0].operator", notSupported},
		{"selector In needs values", deployment(func(d *api.Deployment) {
			d.Spec.Selector.MatchExpressions = []*api.LabelSelectorRequirement{{Key: "tier", Operator: "In"}}
		}), "spec.selector.matchExpressions[0].values", required},
		{"selector Exists takes no values", deployment(func(d *api.Deployment) {
			d.Spec.Selector.MatchExpressions = []*api.LabelSelectorRequirement{{Key: "tier", Operator: "Exists", Values: []string{"front"}}}
		}), "spec.selector.matchExpressions[0].values", forbidden},
		{"template required", deployment(func(d *api.Deployment) { d.Spec.Template = nil }), "spec.template", required},
		{"template pod spec validated at spec.template.spec", deployment(func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" }), "spec.template.spec.containers[0].image", required},
		{"template label values", deployment(func(d *api.Deployment) { d.Spec.Template.Metadata.Labels["tier"] = "front end" }), "spec.template.metadata.labels", invalidT},
		{"template restartPolicy Always", deployment(func(d *api.Deployment) { d.Spec.Template.Spec.RestartPolicy = "OnFailure" }), "spec.template.spec.restartPolicy", notSupported},
		{"template activeDeadlineSeconds forbidden", deployment(func(d *api.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = proto.Int64(30) }), "spec.template.spec.activeDeadlineSeconds", forbidden},
		{"strategy type enum", deployment(func(d *api.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }), "spec.strategy.type", notSupported},
		{"Recreate has no rollingUpdate", deployment(func(d *api.Deployment) { d.Spec.Strategy.Type = "Recreate" }), "spec.strategy.rollingUpdate", forbidden},
		{"Recreate alone", deployment(func(d *api.Deployment) { d.Spec.Strategy = &api.DeploymentStrategy{Type: "Recreate"} }), "", ""},
		{"maxSurge not negative", deployment(func(d *api.Deployment) { rollingUpdate(d).MaxSurge = intstr.FromInt(-1) }), "spec.strategy.rollingUpdate.maxSurge", invalidT},
		{"maxSurge percentage syntax", deployment(func(d *api.Deployment) { rollingUpdate(d).MaxSurge = intstr.FromString("half") }), "spec.strategy.rollingUpdate.maxSurge", invalidT},
		{"maxSurge integer or percentage", deployment(func(d *api.Deployment) { rollingUpdate(d).MaxSurge = structpb.NewBoolValue(true) }), "spec.strategy.rollingUpdate.maxSurge", invalidT},
		{"maxSurge above 100% allowed", deployment(func(d *api.Deployment) { rollingUpdate(d).MaxSurge = intstr.FromString("200%") }), "", ""},
		{"maxUnavailable at most 100%", deployment(func(d *api.Deployment) { rollingUpdate(d).MaxUnavailable = intstr.FromString("150%") }), "spec.strategy.rollingUpdate.maxUnavailable", invalidT},
		{"maxUnavailable and maxSurge not both zero", deployment(func(d *api.Deployment) {
			rollingUpdate(d).MaxUnavailable = intstr.FromInt(0)
			rollingUpdate(d).MaxSurge = intstr.FromString("0%")
		}), "spec.strategy.rollingUpdate.maxUnavailable", invalidT},
		{"maxUnavailable zero with surge", deployment(func(d *api.Deployment) { rollingUpdate(d).MaxUnavailable = intstr.FromInt(0) }), "", ""},
		{"revisionHistoryLimit not negative", deployment(func(d *api.Deployment) { d.Spec.RevisionHistoryLimit = proto.Int32(-1) }), "spec.revisionHistoryLimit", invalidT},
		{"minReadySeconds not negative", deployment(func(d *api.Deployment) { d.Spec.MinReadySeconds = -1 }), "spec.minReadySeconds", invalidT},
		{"progressDeadlineSeconds above minReadySeconds", deployment(func(d *api.Deployment) { d.Spec.MinReadySeconds = 600 }), "spec.progressDeadlineSeconds", invalidT},
		{"namespace required", deployment(func(d *api.Deployment) { d.Metadata.Namespace = "" }), "metadata.namespace", required},
	})
}

func replicaSet(mutate func(*api.ReplicaSet)) func() kinds.Object {
	return with(validReplicaSet, mutate)
}

func TestValidateReplicaSet(t *testing.T) {
	runRules(t, []rule{
		{"valid replicaset", replicaSet(nil), "", ""},
		{"replicas not negative", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.Replicas = proto.Int32(-3) }), "spec.replicas", invalidT},
		{"selector required", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.Selector = nil }), "spec.selector", required},
		{"selector not empty", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.Selector.MatchLabels = nil }), "spec.selector", invalidT},
		{"selector must match template labels", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.Selector.MatchLabels["pod-template-hash"] = "75f95db655" }), "spec.template.metadata.labels", invalidT},
		{"template required", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.Template = nil }), "spec.template", required},
		{"template spec required", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.Template.Spec = nil }), "spec.template.spec", required},
		{"template containers", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort = 70000 }), "spec.template.spec.containers[0].ports[0].containerPort", invalidT},
		{"template restartPolicy Always", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.Template.Spec.RestartPolicy = "Never" }), "spec.template.spec.restartPolicy", notSupported},
		{"minReadySeconds not negative", replicaSet(func(rs *api.ReplicaSet) { rs.Spec.MinReadySeconds = -1 }), "spec.minReadySeconds", invalidT},
	})
}
