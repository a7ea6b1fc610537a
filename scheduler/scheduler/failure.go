package scheduler

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/proto/api"
)

func isFailedPrecondition(err error) bool { return status.Code(err) == codes.FailedPrecondition }

// recordFailure tells the user why the pod is still Pending: a
// FailedScheduling event on every attempt (the recorder aggregates repeats)
// and the PodScheduled=False condition, written in the background.
func (s *Scheduler) recordFailure(ctx context.Context, pod *api.Pod, err error, unschedulable bool) {
	msg := err.Error()
	s.recorder.Eventf(pod, events.Warning, ReasonFailedScheduling, "%s", msg)
	reason := ReasonUnschedulable
	if !unschedulable {
		reason = ReasonSchedulerError
	}
	if !s.acquire(ctx) {
		return
	}
	go func() {
		defer s.release()
		if err := s.setPodScheduledFalse(ctx, pod.GetMetadata().GetNamespace(), pod.GetMetadata().GetName(), pod.GetMetadata().GetUid(), reason, msg); err != nil && ctx.Err() == nil {
			s.log.Warn("update pod condition", "pod", pod.GetMetadata().GetNamespace()+"/"+pod.GetMetadata().GetName(), "err", err)
		}
	}()
}

// setPodScheduledFalse writes PodScheduled=False with reason and message
// unless the pod already says exactly that, or is gone, bound or replaced.
// A conflict re-reads the pod and tries again.
func (s *Scheduler) setPodScheduledFalse(ctx context.Context, namespace, name, uid, reason, msg string) error {
	cur, ok := s.pods.Lister().Get(namespace, name)
	for attempt := 0; attempt < statusUpdateRetries; attempt++ {
		if !ok || cur.GetMetadata().GetUid() != uid || cur.GetSpec().GetNodeName() != "" {
			return nil
		}
		pod := proto.Clone(cur).(*api.Pod)
		if !setCondition(pod, &api.Condition{
			Type: ConditionPodScheduled, Status: conditionFalse, Reason: reason, Message: msg,
			LastTransitionTime: timestamppb.New(time.Now().UTC().Truncate(time.Second)),
		}) {
			return nil
		}
		uctx, cancel := context.WithTimeout(ctx, statusUpdateTimeout)
		_, err := s.client.Pods().UpdateStatus(uctx, pod)
		cancel()
		switch {
		case err == nil, client.IsNotFound(err):
			return nil
		case !client.IsConflict(err):
			return fmt.Errorf("update status of pod %s/%s: %w", namespace, name, err)
		}
		gctx, cancel := context.WithTimeout(ctx, statusUpdateTimeout)
		cur, err = s.client.Pods().Get(gctx, namespace, name)
		cancel()
		if client.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("re-read pod %s/%s after a conflict: %w", namespace, name, err)
		}
		ok = true
	}
	return fmt.Errorf("update status of pod %s/%s: still conflicting after %d attempts", namespace, name, statusUpdateRetries)
}

// setCondition sets c on the pod's status, keeping the transition time
// when the status does not change. It reports whether anything changed.
func setCondition(pod *api.Pod, c *api.Condition) bool {
	if pod.Status == nil {
		pod.Status = &api.PodStatus{}
	}
	for i, old := range pod.Status.Conditions {
		if old.GetType() != c.GetType() {
			continue
		}
		if old.GetStatus() == c.GetStatus() && old.GetReason() == c.GetReason() && old.GetMessage() == c.GetMessage() {
			return false
		}
		if old.GetStatus() == c.GetStatus() && old.GetLastTransitionTime() != nil {
			c.LastTransitionTime = old.GetLastTransitionTime()
		}
		pod.Status.Conditions[i] = c
		return true
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
	return true
}
