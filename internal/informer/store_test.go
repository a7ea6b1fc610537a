package informer

import (
	"slices"
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
)

func ownedPod(ns, name, node string, owners ...string) *api.Pod {
	p := pod(ns, name)
	p.Spec.NodeName = node
	for _, uid := range owners {
		p.Metadata.OwnerReferences = append(p.Metadata.OwnerReferences, &api.OwnerReference{Kind: "ReplicaSet", Name: "rs-" + uid, Uid: uid})
	}
	return p
}

func TestListerIndexes(t *testing.T) {
	l := NewLister(
		ownedPod("default", "a", "n1", "rs1"),
		ownedPod("default", "b", "n2", "rs1", "rs2"),
		ownedPod("web", "c", "", "rs2"),
		ownedPod("web", "d", ""),
	)
	tests := []struct {
		index, value string
		want         []string
	}{
		{IndexNamespace, "default", []string{"default/a", "default/b"}},
		{IndexNamespace, "web", []string{"web/c", "web/d"}},
		{IndexNamespace, "none", []string{}},
		{IndexNodeName, "n1", []string{"default/a"}},
		{IndexNodeName, "", []string{"web/c", "web/d"}}, // unbound pods: the scheduler's queue
		{IndexOwnerUID, "rs1", []string{"default/a", "default/b"}},
		{IndexOwnerUID, "rs2", []string{"default/b", "web/c"}},
	}
	for _, tt := range tests {
		if got := keys(l.ByIndex(tt.index, tt.value)); !slices.Equal(got, tt.want) {
			t.Errorf("ByIndex(%s, %q) = %v, want %v", tt.index, tt.value, got, tt.want)
		}
	}
	if _, ok := l.Get("web", "c"); !ok {
		t.Error("Get(web, c) missing")
	}
	if _, ok := l.GetByKey("default/b"); !ok {
		t.Error("GetByKey(default/b) missing")
	}
	if _, ok := l.Get("default", "c"); ok {
		t.Error("Get(default, c) found a pod of another namespace")
	}
}

func TestStoreKeepsIndexesCurrentAcrossUpdatesAndDeletes(t *testing.T) {
	s := newStore[*api.Pod]()
	s.put(ownedPod("default", "a", "n1", "rs1"))
	s.put(ownedPod("default", "b", "n1"))
	// a moves to n2 and loses its owner; b is deleted.
	old, existed := s.put(ownedPod("default", "a", "n2"))
	if !existed || old.Spec.NodeName != "n1" {
		t.Fatalf("put returned %v, %v; want the replaced pod", old, existed)
	}
	if gone, ok := s.remove("default/b"); !ok || gone.Metadata.Name != "b" {
		t.Fatalf("remove returned %v, %v", gone, ok)
	}
	if _, ok := s.remove("default/b"); ok {
		t.Fatal("second remove found the pod again")
	}
	for _, tt := range []struct {
		index, value string
		want         []string
	}{
		{IndexNodeName, "n1", []string{}},
		{IndexNodeName, "n2", []string{"default/a"}},
		{IndexOwnerUID, "rs1", []string{}},
		{IndexNamespace, "default", []string{"default/a"}},
	} {
		if got := keys(s.byIndex(tt.index, tt.value)); !slices.Equal(got, tt.want) {
			t.Errorf("byIndex(%s, %q) = %v, want %v", tt.index, tt.value, got, tt.want)
		}
	}
	if len(s.indices[IndexNodeName]) != 1 {
		t.Errorf("empty index values are kept: %v", s.indices[IndexNodeName])
	}
}

func TestAddIndexIndexesCachedObjects(t *testing.T) {
	s := newStore[*api.Pod]()
	a := pod("default", "a")
	a.Metadata.Labels = map[string]string{"app": "web"}
	s.put(a)
	s.put(pod("default", "b"))
	s.addIndex("app", func(p *api.Pod) []string { return []string{p.Metadata.Labels["app"]} })
	if got := keys(s.byIndex("app", "web")); !slices.Equal(got, []string{"default/a"}) {
		t.Errorf("byIndex(app, web) = %v", got)
	}
	c := pod("default", "c")
	c.Metadata.Labels = map[string]string{"app": "web"}
	s.put(c)
	if got := keys(s.byIndex("app", "web")); !slices.Equal(got, []string{"default/a", "default/c"}) {
		t.Errorf("after put byIndex(app, web) = %v", got)
	}
}

func TestIndexNodeNameIgnoresOtherKinds(t *testing.T) {
	l := NewLister(&api.Node{Metadata: &api.ObjectMeta{Name: "n1"}})
	if got := l.ByIndex(IndexNodeName, ""); len(got) != 0 {
		t.Errorf("nodes in the pod node index: %v", got)
	}
	if got := keys(l.ByIndex(IndexNamespace, "")); !slices.Equal(got, []string{"n1"}) {
		t.Errorf("cluster-scoped object under namespace \"\": %v", got)
	}
}

func TestIndexMisuse(t *testing.T) {
	for name, f := range map[string]func(){
		"unknown index":   func() { NewLister[*api.Pod]().ByIndex("nope", "x") },
		"duplicate index": func() { newStore[*api.Pod]().addIndex(IndexNamespace, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}
