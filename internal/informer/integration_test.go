package informer

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

// model is what a handler believes the cluster holds: key → resourceVersion.
type model struct {
	mu   sync.Mutex
	objs map[string]string
	errs []string
}

func (m *model) handler() Handler[*api.Pod] {
	return Handler[*api.Pod]{
		OnAdd: func(p *api.Pod) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.objs[kinds.Key(p)]; ok {
				m.errs = append(m.errs, "add of known "+kinds.Key(p))
			}
			m.objs[kinds.Key(p)] = p.Metadata.ResourceVersion
		},
		OnUpdate: func(o, n *api.Pod) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if rv, ok := m.objs[kinds.Key(n)]; !ok || rv != o.Metadata.ResourceVersion {
				m.errs = append(m.errs, fmt.Sprintf("update of %s from %s, handler had %q", kinds.Key(n), o.Metadata.ResourceVersion, rv))
			}
			m.objs[kinds.Key(n)] = n.Metadata.ResourceVersion
		},
		OnDelete: func(p *api.Pod) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.objs[kinds.Key(p)]; !ok {
				m.errs = append(m.errs, "delete of unknown "+kinds.Key(p))
			}
			delete(m.objs, kinds.Key(p))
		},
	}
}

// converge waits until the handler's model and the lister both equal what
// the apiserver lists, and that no handler call contradicted the model.
func (m *model) converge(t *testing.T, c *client.Client, inf *Informer[*api.Pod], opts client.ListOptions) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pods, _, err := c.Pods().List(t.Context(), "", opts)
		want := map[string]string{}
		for _, p := range pods {
			want[kinds.Key(p)] = p.Metadata.ResourceVersion
		}
		cached := map[string]string{}
		for _, p := range inf.Lister().List(nil) {
			cached[kinds.Key(p)] = p.Metadata.ResourceVersion
		}
		m.mu.Lock()
		ok := err == nil && maps.Equal(m.objs, want) && maps.Equal(cached, want)
		errs := append([]string(nil), m.errs...)
		got := maps.Clone(m.objs)
		m.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("handler calls contradict each other: %v", errs)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("informer did not converge:\n server %v (err %v)\nhandler %v\n lister %v", want, err, got, cached)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newPod(name string) *api.Pod {
	return &api.Pod{
		Metadata: &api.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "web"}},
		Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "nginx:1.25"}}},
	}
}

func TestInformerAgainstAPIServer(t *testing.T) {
	tc := testcluster.Start(t)
	pods := tc.Client.Pods()
	for n := range 5 {
		if _, err := pods.Create(t.Context(), newPod(fmt.Sprintf("web-%d", n))); err != nil {
			t.Fatal(err)
		}
	}
	inf := New(pods, Options{Namespace: "default", ResyncPeriod: time.Hour})
	m := &model{objs: map[string]string{}}
	inf.AddEventHandler(m.handler())
	start(t, inf)
	m.converge(t, tc.Client, inf, client.ListOptions{})

	p, err := pods.Get(t.Context(), "default", "web-0")
	if err != nil {
		t.Fatal(err)
	}
	p.Metadata.Labels["tier"] = "front"
	if _, err := pods.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Client.Bind(t.Context(), "default", "web-1", "", "node-a"); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	if _, err := pods.Delete(t.Context(), "default", "web-2", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	m.converge(t, tc.Client, inf, client.ListOptions{})
	if got := keys(inf.Lister().ByIndex(IndexNodeName, "node-a")); len(got) != 1 || got[0] != "default/web-1" {
		t.Errorf("pods on node-a = %v, want the bound web-1", got)
	}
}

func TestInformerFieldSelectorFollowsBinding(t *testing.T) {
	tc := testcluster.Start(t)
	pods := tc.Client.Pods()
	opts := client.ListOptions{FieldSelector: "spec.nodeName=node-a"}
	inf := New(pods, Options{FieldSelector: opts.FieldSelector})
	m := &model{objs: map[string]string{}}
	inf.AddEventHandler(m.handler())
	start(t, inf)
	for n := range 3 {
		if _, err := pods.Create(t.Context(), newPod(fmt.Sprintf("web-%d", n))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tc.Client.Bind(t.Context(), "default", "web-1", "", "node-a"); err != nil {
		t.Fatal(err)
	}
	m.converge(t, tc.Client, inf, opts)
	if inf.Lister().Len() != 1 {
		t.Fatalf("cached %d pods, want only the one bound to node-a", inf.Lister().Len())
	}
}

func TestInformerConvergesAcrossAPIServerRestart(t *testing.T) {
	// A tiny watch cache makes resuming after the restart likely to be
	// expired, so both the resume and the re-list paths get exercised.
	tc := testcluster.Start(t, func(c *app.Config) { c.WatchCache.Capacity = 8 })
	pods := tc.Client.Pods()
	for n := range 10 {
		if _, err := pods.Create(t.Context(), newPod(fmt.Sprintf("web-%d", n))); err != nil {
			t.Fatal(err)
		}
	}
	inf := New(pods, Options{})
	// Reconnecting after 0.5–1s leaves time for more writes than the
	// watch cache holds, so the resume usually expires and re-lists.
	inf.backoffInitial, inf.backoffMax = time.Second, 2*time.Second
	m := &model{objs: map[string]string{}}
	inf.AddEventHandler(m.handler())
	start(t, inf)
	m.converge(t, tc.Client, inf, client.ListOptions{})

	tc.Restart(t)
	zero := int64(0)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for n := range 10 {
		name := fmt.Sprintf("web-%d", n) // 3 deletes, 3 updates, 10 creates
		switch n % 3 {
		case 0:
			_, err := pods.Delete(ctx, "default", name, client.DeleteOptions{GracePeriodSeconds: &zero})
			mustOK(t, err)
		case 1:
			p, err := pods.Get(ctx, "default", name)
			mustOK(t, err)
			p.Metadata.Annotations = map[string]string{"touched": "yes"}
			_, err = pods.Update(ctx, p)
			mustOK(t, err)
		}
		_, err := pods.Create(ctx, newPod(fmt.Sprintf("new-%d", n)))
		mustOK(t, err)
	}
	m.converge(t, tc.Client, inf, client.ListOptions{})
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
