package scheduler

import (
	"maps"
	"slices"

	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/framework"
	"github.com/skiff-dev/skiff/scheduler/plugins/nodeready"
	"github.com/skiff-dev/skiff/scheduler/queue"
)

// Informer handlers. They run on the informers' dispatch goroutines and only
// update the cache and the queue: never an API call.

func assigned(p *api.Pod) bool { return p.GetSpec().GetNodeName() != "" }

func terminal(p *api.Pod) bool {
	ph := p.GetStatus().GetPhase()
	return ph == phaseSucceeded || ph == phaseFailed
}

// responsible reports a pending pod this scheduler should place.
func (s *Scheduler) responsible(p *api.Pod) bool {
	return p.GetSpec().GetSchedulerName() == s.cfg.SchedulerName &&
		p.GetMetadata().GetDeletionTimestamp() == nil && !terminal(p)
}

func (s *Scheduler) podInfo(p *api.Pod) (*framework.PodInfo, bool) {
	pi, err := framework.NewPodInfo(p)
	if err != nil {
		s.log.Error("pod cannot be accounted", "pod", kinds.Key(p), "err", err)
		return nil, false
	}
	return pi, true
}

func (s *Scheduler) onPodAdd(p *api.Pod) {
	if assigned(p) {
		if !terminal(p) {
			if pi, ok := s.podInfo(p); ok {
				s.cache.AddPod(pi)
			}
		}
		return
	}
	if !s.responsible(p) {
		return
	}
	pi, ok := s.podInfo(p)
	if !ok {
		s.recorder.Eventf(p, events.Warning, ReasonFailedScheduling, "pod resources cannot be parsed")
		return
	}
	s.queue.Add(pi)
}

func (s *Scheduler) onPodUpdate(old, cur *api.Pod) {
	key := kinds.Key(cur)
	if assigned(cur) {
		if !assigned(old) {
			s.queue.Delete(key) // bound: by us (confirmation) or by someone else
		}
		if terminal(cur) {
			if _, known := s.cache.PodNode(key); known {
				s.cache.RemovePod(key)
				s.queue.MoveAllToActiveOrBackoffQueue(queue.AssignedPodDelete)
			}
			return
		}
		if pi, ok := s.podInfo(cur); ok {
			s.cache.UpdatePod(pi)
		}
		return
	}
	if !s.responsible(cur) {
		s.queue.Delete(key)
		return
	}
	oldPI, ok1 := s.podInfo(old)
	curPI, ok2 := s.podInfo(cur)
	if !ok1 || !ok2 {
		return
	}
	s.queue.Update(oldPI, curPI)
}

func (s *Scheduler) onPodDelete(p *api.Pod) {
	key := kinds.Key(p)
	s.queue.Delete(key)
	if _, known := s.cache.PodNode(key); known {
		s.cache.RemovePod(key)
		s.queue.MoveAllToActiveOrBackoffQueue(queue.AssignedPodDelete)
	}
}

func (s *Scheduler) onNodeAdd(n *api.Node) {
	if err := s.cache.AddNode(n); err != nil {
		s.log.Error("node cannot be accounted", "node", n.GetMetadata().GetName(), "err", err)
	}
	s.queue.MoveAllToActiveOrBackoffQueue(queue.NodeAdd)
}

func (s *Scheduler) onNodeUpdate(old, cur *api.Node) {
	if old == cur {
		return // a resync: nothing changed
	}
	if err := s.cache.UpdateNode(cur); err != nil {
		s.log.Error("node cannot be accounted", "node", cur.GetMetadata().GetName(), "err", err)
	}
	if nodeUpdateMayHelp(old, cur) {
		s.queue.MoveAllToActiveOrBackoffQueue(queue.NodeUpdate)
	}
}

func (s *Scheduler) onNodeDelete(n *api.Node) {
	s.cache.RemoveNode(n.GetMetadata().GetName())
}

// nodeUpdateMayHelp reports a node change that may let a pending pod fit:
// uncordoned, became Ready, more allocatable, different labels or taints.
// Heartbeats change none of these and move nothing.
func nodeUpdateMayHelp(old, cur *api.Node) bool {
	if old.GetSpec().GetUnschedulable() && !cur.GetSpec().GetUnschedulable() {
		return true
	}
	if !ready(old) && ready(cur) {
		return true
	}
	if !maps.Equal(old.GetStatus().GetAllocatable(), cur.GetStatus().GetAllocatable()) {
		return true
	}
	if !maps.Equal(old.GetMetadata().GetLabels(), cur.GetMetadata().GetLabels()) {
		return true
	}
	return !slices.EqualFunc(old.GetSpec().GetTaints(), cur.GetSpec().GetTaints(), func(a, b *api.Taint) bool {
		return a.GetKey() == b.GetKey() && a.GetValue() == b.GetValue() && a.GetEffect() == b.GetEffect()
	})
}

func ready(n *api.Node) bool {
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() == nodeready.ConditionReady {
			return c.GetStatus() == "True"
		}
	}
	return false
}
