package replicaset

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/proto/api"
)

func pod(name, node, phase string, ready bool, created time.Time, restarts int32) *api.Pod {
	p := &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, CreationTimestamp: timestamppb.New(created)},
		Spec:     &api.PodSpec{NodeName: node},
		Status:   &api.PodStatus{Phase: phase, ContainerStatuses: []*api.ContainerStatus{{RestartCount: restarts}}},
	}
	if ready {
		p.Status.Conditions = []*api.Condition{{Type: "Ready", Status: "True", LastTransitionTime: timestamppb.New(created.Add(time.Second))}}
	}
	return p
}

func TestScaleDownDeletesCheapestPodsFirst(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pods := []*api.Pod{
		pod("ready-old", "n1", "Running", true, t0, 0),
		pod("ready-new", "n1", "Running", true, t0.Add(time.Minute), 0),
		pod("unscheduled", "", "Pending", false, t0, 0),
		pod("pending", "n1", "Pending", false, t0, 0),
		pod("not-ready", "n1", "Running", false, t0, 0),
		pod("ready-restarting", "n1", "Running", true, t0, 5),
	}
	tests := []struct {
		n    int
		want []string
	}{
		{1, []string{"unscheduled"}},
		{3, []string{"unscheduled", "pending", "not-ready"}},
		{4, []string{"unscheduled", "pending", "not-ready", "ready-new"}},
		{5, []string{"unscheduled", "pending", "not-ready", "ready-new", "ready-restarting"}},
		{10, nil}, // more than there are: all of them
	}
	for _, tt := range tests {
		var got []string
		for _, p := range podsToDelete(pods, tt.n) {
			got = append(got, p.GetMetadata().GetName())
		}
		want := tt.want
		if want == nil {
			if len(got) != len(pods) {
				t.Fatalf("n=%d: got %v, want all", tt.n, got)
			}
			continue
		}
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d: deletes %v, want %v", tt.n, got, want)
		}
	}
}

func TestSlowStartBatchesDoubleUpToTheCount(t *testing.T) {
	tests := []struct {
		count int
		want  []int
	}{
		{0, nil},
		{1, []int{1}},
		{3, []int{1, 2}},
		{10, []int{1, 2, 4, 3}},
		{40, []int{1, 2, 4, 8, 16, 9}},
	}
	for _, tt := range tests {
		if got := slowStartBatches(tt.count, 1); !slices.Equal(got, tt.want) {
			t.Errorf("slowStartBatches(%d) = %v, want %v", tt.count, got, tt.want)
		}
	}
}

func TestPodFromTemplateNamesAndOwnsThePod(t *testing.T) {
	replicas := int32(2)
	rs := &api.ReplicaSet{
		Metadata: &api.ObjectMeta{Name: "web-5f5df8d6c", Namespace: "default", Uid: "u1"},
		Spec: &api.ReplicaSetSpec{Replicas: &replicas, Template: &api.PodTemplateSpec{
			Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "nginx"}}},
		}},
	}
	p := podFromTemplate(rs)
	if p.Metadata.GenerateName != "web-5f5df8d6c-" || p.Metadata.Name != "" || p.Metadata.Namespace != "default" {
		t.Fatalf("metadata %v", p.Metadata)
	}
	refs := p.Metadata.OwnerReferences
	if len(refs) != 1 || refs[0].GetUid() != "u1" || !refs[0].GetController() || refs[0].GetKind() != "ReplicaSet" {
		t.Fatalf("ownerReferences %v", refs)
	}
	p.Spec.Containers[0].Image = "changed"
	if rs.Spec.Template.Spec.Containers[0].Image != "nginx" {
		t.Fatal("the pod shares its spec with the template")
	}
}

func TestComputeStatusCountsReadyAvailableAndFullyLabeled(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	replicas := int32(3)
	rs := &api.ReplicaSet{
		Metadata: &api.ObjectMeta{Generation: 4},
		Spec: &api.ReplicaSetSpec{Replicas: &replicas, MinReadySeconds: 30, Template: &api.PodTemplateSpec{
			Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "web"}}}},
	}
	fresh := pod("fresh", "n1", "Running", true, time.Now(), 0) // ready 1s from now: not yet available
	old := pod("old", "n1", "Running", true, t0, 0)
	old.Metadata.Labels = map[string]string{"app": "web"}
	st := computeStatus(rs, []*api.Pod{fresh, old, pod("pending", "", "Pending", false, t0, 0)}, time.Now())
	if st.Replicas != 3 || st.ReadyReplicas != 2 || st.AvailableReplicas != 1 || st.FullyLabeledReplicas != 1 || st.ObservedGeneration != 4 {
		t.Fatalf("status %v", st)
	}
}
