package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
)

func TestRolloutStuckPastItsDeadlineIsReported(t *testing.T) {
	e := newEnv(t, 0) // no nodes: the pods never run
	e.startManager(testConfig())
	ctx := context.Background()
	d := newDeployment("stuck", 2, "nginx")
	d.Spec.ProgressDeadlineSeconds = ptr(int32(2))
	if _, err := e.c.Deployments().Create(ctx, d); err != nil {
		t.Fatalf("create: %v", err)
	}
	eventually(t, 20*time.Second, "ProgressDeadlineExceeded", func() error {
		d, err := e.c.Deployments().Get(ctx, "default", "stuck")
		if err != nil {
			return err
		}
		p := controllerutil.Condition(d.GetStatus().GetConditions(), "Progressing")
		a := controllerutil.Condition(d.GetStatus().GetConditions(), "Available")
		if p.GetStatus() != "False" || p.GetReason() != "ProgressDeadlineExceeded" {
			return errorf("Progressing %v", p)
		}
		if a.GetStatus() != "False" || d.GetStatus().GetUnavailableReplicas() != 2 {
			return errorf("Available %v, unavailable %d", a, d.GetStatus().GetUnavailableReplicas())
		}
		return nil
	})
}
