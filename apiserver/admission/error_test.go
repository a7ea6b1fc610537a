package admission

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// The messages users see, word for word, as kubectl prints them.
func TestInvalidErrorReadsLikeKubectl(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  func() kinds.Object
		want string
	}{
		{
			name: "one cause, grouped kind",
			obj:  with(validDeployment, func(d *api.Deployment) { d.Spec.Replicas = proto.Int32(-1) }),
			want: `Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`,
		},
		{
			name: "core kind has no group",
			obj:  with(validPod, func(p *api.Pod) { p.Spec.Containers[0].Image = "" }),
			want: `Pod "web-1" is invalid: spec.containers[0].image: Required value`,
		},
		{
			name: "several causes are bracketed and joined",
			obj: with(validDeployment, func(d *api.Deployment) {
				d.Spec.Replicas = proto.Int32(-1)
				d.Spec.Template.Metadata.Labels["app"] = "api"
				d.Spec.Strategy.RollingUpdate.MaxSurge = intstr.FromInt(0)
				d.Spec.Strategy.RollingUpdate.MaxUnavailable = intstr.FromString("0%")
			}),
			want: `Deployment.apps "web" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, ` +
				`spec.template.metadata.labels: Invalid value: {"app":"api","tier":"front"}: selector does not match template labels, ` +
				`spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when ` + "`maxSurge`" + ` is 0]`,
		},
		{
			name: "enum lists the supported values",
			obj:  with(validService, func(s *api.Service) { s.Spec.Type = "LoadBalancer" }),
			want: `Service "web" is invalid: spec.type: Unsupported value: "LoadBalancer": supported values: "ClusterIP", "NodePort"`,
		},
		{
			name: "requests above limits",
			obj:  with(validPod, func(p *api.Pod) { p.Spec.Containers[0].Resources.Requests["memory"] = "1Gi" }),
			want: `Pod "web-1" is invalid: spec.containers[0].resources.requests[memory]: Invalid value: "1Gi": must be less than or equal to memory limit of 128Mi`,
		},
		{
			name: "role binding group",
			obj:  with(validRoleBinding, func(r *api.RoleBinding) { r.RoleRef.Name = "root" }),
			want: `RoleBinding.rbac.authorization.k8s.io "system:node:worker-1" is invalid: roleRef.name: Unsupported value: "root": supported values: "admin", "controller", "edit", "node", "proxy", "scheduler", "view"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateCreate(tc.obj())
			if err == nil {
				t.Fatal("want an error")
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestInvalidErrorBoundsItsMessage(t *testing.T) {
	var errs field.ErrorList
	for i := 0; i < 25; i++ {
		errs = append(errs, field.Required(field.NewPath("spec", "containers").Index(i).Child("image"), ""))
	}
	errs = append(errs, errs[0]) // repeated causes are printed once
	err := &InvalidError{Kind: "Pod", Name: "big", Errs: errs}
	msg := err.Error()
	if !strings.HasSuffix(msg, "spec.containers[9].image: Required value, and 15 more]") {
		t.Errorf("message not bounded: %s", msg)
	}
	if n := strings.Count(msg, "Required value"); n != maxErrorsInMessage {
		t.Errorf("%d causes printed, want %d", n, maxErrorsInMessage)
	}
}

func TestValidateReturnsInvalidErrorWithKindAndName(t *testing.T) {
	err := ValidateCreate(with(validService, func(s *api.Service) { s.Spec.Ports[0].Port = 0 })())
	var inv *InvalidError
	if !errors.As(fmt.Errorf("create service: %w", err), &inv) {
		t.Fatalf("not an *InvalidError: %v", err)
	}
	if inv.Kind != "Service" || inv.Name != "web" || len(inv.Errs) != 1 || inv.Errs[0].Field != "spec.ports[0].port" {
		t.Errorf("got %+v", inv)
	}
}

func TestValidateRefusesUnknownTypes(t *testing.T) {
	// A pod template has metadata but is not a kind.
	err := ValidateCreate(&api.PodTemplateSpec{})
	var inv *InvalidError
	if err == nil || errors.As(err, &inv) {
		t.Errorf("want a plain error for a type that is not a kind, got %v", err)
	}
}

// Every kind in the table has its validation: an empty object is invalid,
// never "not a kind".
func TestEveryKindIsValidated(t *testing.T) {
	for _, info := range kinds.All() {
		err := ValidateCreate(info.New())
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Kind != info.Kind {
			t.Errorf("%s: want *InvalidError for an empty object, got %v", info.Kind, err)
		}
		if err := ValidateUpdate(info.New(), info.New()); !errors.As(err, &inv) {
			t.Errorf("%s update: want *InvalidError, got %v", info.Kind, err)
		}
	}
}
