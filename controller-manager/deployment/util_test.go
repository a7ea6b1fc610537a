package deployment

import (
	"regexp"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

func template(image string) *api.PodTemplateSpec {
	return &api.PodTemplateSpec{
		Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "k8s-nginx"}},
		Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "nginx", Image: image}}},
	}
}

func TestComputeHashIsStableSafeAndTemplateSensitive(t *testing.T) {
	safe := regexp.MustCompile(`^[bcdfghjklmnpqrstvwxz2456789]{1,10}$`)
	a, b := ComputeHash(template("nginx"), nil), ComputeHash(template("nginx"), nil)
	if a != b {
		t.Fatalf("hash not stable: %s vs %s", a, b)
	}
	one := int32(1)
	tests := []struct {
		name string
		hash string
		same bool
	}{
		{"same template", ComputeHash(template("nginx"), nil), true},
		{"other image", ComputeHash(template("nginx:1.25"), nil), false},
		{"collision count", ComputeHash(template("nginx"), &one), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !safe.MatchString(tt.hash) {
				t.Fatalf("hash %q is not a SafeEncodeString of a uint32", tt.hash)
			}
			if (tt.hash == a) != tt.same {
				t.Fatalf("hash %s vs %s: same=%v, want %v", tt.hash, a, tt.hash == a, tt.same)
			}
		})
	}
}

func TestEqualIgnoreHash(t *testing.T) {
	withHash := proto.Clone(template("nginx")).(*api.PodTemplateSpec)
	withHash.Metadata.Labels[LabelPodTemplateHash] = "abc"
	tests := []struct {
		name string
		a, b *api.PodTemplateSpec
		want bool
	}{
		{"hash label ignored", withHash, template("nginx"), true},
		{"image differs", withHash, template("nginx:2"), false},
		{"identical", template("x"), template("x"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EqualIgnoreHash(tt.a, tt.b); got != tt.want {
				t.Fatalf("EqualIgnoreHash = %v, want %v", got, tt.want)
			}
			if _, ok := withHash.Metadata.Labels[LabelPodTemplateHash]; !ok {
				t.Fatal("EqualIgnoreHash changed its argument")
			}
		})
	}
}

func rolling(replicas int32, surge, unavailable *structpb.Value) *api.Deployment {
	return &api.Deployment{
		Metadata: &api.ObjectMeta{Name: "d", Generation: 1},
		Spec: &api.DeploymentSpec{Replicas: &replicas, Strategy: &api.DeploymentStrategy{Type: StrategyRollingUpdate,
			RollingUpdate: &api.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavailable}}},
	}
}

func rs(name string, replicas, available int32) *api.ReplicaSet {
	return &api.ReplicaSet{
		Metadata: &api.ObjectMeta{Name: name},
		Spec:     &api.ReplicaSetSpec{Replicas: &replicas},
		Status:   &api.ReplicaSetStatus{Replicas: replicas, AvailableReplicas: available, ReadyReplicas: available},
	}
}

func TestResolveFenceposts(t *testing.T) {
	tests := []struct {
		name                 string
		d                    *api.Deployment
		surge, unavail, maxU int32
	}{
		{"defaults 25% of 10", rolling(10, nil, nil), 3, 2, 2},
		{"25% of 3 rounds surge up, unavailable down", rolling(3, intstr.FromString("25%"), intstr.FromString("25%")), 1, 0, 0},
		{"both zero makes one unavailable", rolling(4, intstr.FromInt(0), intstr.FromInt(0)), 0, 1, 1},
		{"absolute numbers", rolling(5, intstr.FromInt(2), intstr.FromInt(1)), 2, 1, 1},
		{"maxUnavailable capped at replicas", rolling(2, intstr.FromInt(0), intstr.FromInt(5)), 0, 5, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, u, err := resolveFenceposts(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if s != tt.surge || u != tt.unavail || maxUnavailable(tt.d) != tt.maxU {
				t.Fatalf("surge %d unavailable %d maxUnavailable %d, want %d %d %d", s, u, maxUnavailable(tt.d), tt.surge, tt.unavail, tt.maxU)
			}
		})
	}
	recreate := rolling(3, nil, nil)
	recreate.Spec.Strategy = &api.DeploymentStrategy{Type: StrategyRecreate}
	if maxSurge(recreate) != 0 || maxUnavailable(recreate) != 0 {
		t.Fatal("Recreate has surge or unavailable budget")
	}
	if _, _, err := resolveFenceposts(rolling(3, intstr.FromString("lots"), nil)); err == nil {
		t.Fatal("a non-percentage string was accepted")
	}
}

func TestRollingUpdateMath(t *testing.T) {
	// 10 replicas, maxSurge 3, maxUnavailable 2.
	d := rolling(10, intstr.FromInt(3), intstr.FromInt(2))
	tests := []struct {
		name       string
		old, newRS *api.ReplicaSet
		wantNew    int32 // newRSReplicas
		wantBudget int32 // oldScaleDownBudget
	}{
		{"start: new grows by the surge", rs("old", 10, 10), rs("new", 0, 0), 3, 10 - 8 - 0},
		{"surge used up: new cannot grow", rs("old", 10, 10), rs("new", 3, 0), 3, 13 - 8 - 3},
		{"new pods available: old may shrink", rs("old", 10, 10), rs("new", 3, 3), 3, 13 - 8},
		{"old shrunk: new grows again", rs("old", 5, 5), rs("new", 3, 3), 8, 8 - 8},
		{"never past desired", rs("old", 1, 1), rs("new", 9, 9), 10, 10 - 8},
		{"old status ahead of spec counts as spec", rs("old", 2, 2), rs("new", 8, 8), 10, 10 - 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := []*api.ReplicaSet{tt.old, tt.newRS}
			got, err := newRSReplicas(d, all, tt.newRS)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantNew {
				t.Errorf("newRSReplicas = %d, want %d", got, tt.wantNew)
			}
			if b := oldScaleDownBudget(d, all, tt.newRS); b != tt.wantBudget {
				t.Errorf("oldScaleDownBudget = %d, want %d", b, tt.wantBudget)
			}
		})
	}
	stale := rs("old", 2, 0)
	stale.Status.AvailableReplicas = 7 // status not caught up with a scale-down
	if got := rsAvailable(stale); got != 2 {
		t.Fatalf("rsAvailable = %d, want the spec's 2", got)
	}
}

func TestProportionalScaling(t *testing.T) {
	// A rollout of 10 (surge 3) split 6 old / 4 new, scaled to 20.
	d := rolling(20, intstr.FromInt(3), intstr.FromInt(2))
	old, newRS := rs("old", 6, 6), rs("new", 4, 4)
	for _, r := range []*api.ReplicaSet{old, newRS} {
		r.Metadata.Annotations = map[string]string{AnnotationMaxReplicas: "13"}
	}
	toAdd := int32(20 + 3 - 10)
	pOld := proportion(old, d, toAdd, 0)
	pNew := proportion(newRS, d, toAdd, pOld)
	// 6*23/13 = 10.6 → 11 (+5); 4*23/13 = 7.07 → 7 (+3); 5 left over.
	if pOld != 5 || pNew != 3 {
		t.Fatalf("proportions old %d new %d, want 5 and 3", pOld, pNew)
	}
	if got := proportion(old, d, 0, 0); got != 0 {
		t.Fatalf("nothing to add gave %d", got)
	}
	down := rolling(0, intstr.FromInt(3), intstr.FromInt(2))
	if got := proportion(old, down, -6, 0); got != -6 {
		t.Fatalf("scaling to zero takes %d from a 6-replica set, want -6", got)
	}
}

func TestSetRevisionKeepsHistory(t *testing.T) {
	m := &api.ObjectMeta{}
	setRevision(m, 1)
	setRevision(m, 3)
	setRevision(m, 5)
	if m.Annotations[AnnotationRevision] != "5" || m.Annotations[AnnotationRevisionHistory] != "1,3" {
		t.Fatalf("annotations %v", m.Annotations)
	}
}
