package admission

import (
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

var supportedDeploymentStrategies = []string{strategyRecreate, strategyRollingUpdate}

func validateDeployment(d *api.Deployment) field.ErrorList {
	errs := validateObjectMeta(d.GetMetadata(), true, dnsSubdomainName)
	s := d.GetSpec()
	if s == nil {
		return append(errs, field.Required(specPath, ""))
	}
	errs = append(errs, validateReplicas(s.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, validateSelectorAndTemplate(s.GetSelector(), s.GetTemplate(), "deployment")...)
	errs = append(errs, validateStrategy(s.GetStrategy(), specPath.Child("strategy"))...)
	errs = append(errs, nonNegative(s.GetMinReadySeconds(), specPath.Child("minReadySeconds"))...)
	if s.RevisionHistoryLimit != nil {
		errs = append(errs, nonNegative(s.GetRevisionHistoryLimit(), specPath.Child("revisionHistoryLimit"))...)
	}
	if s.ProgressDeadlineSeconds != nil {
		p := specPath.Child("progressDeadlineSeconds")
		switch v := s.GetProgressDeadlineSeconds(); {
		case v < 0:
			errs = append(errs, field.Invalid(p, v, msgNonNegative))
		case v <= s.GetMinReadySeconds():
			errs = append(errs, field.Invalid(p, v, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

func validateReplicaSet(rs *api.ReplicaSet) field.ErrorList {
	errs := validateObjectMeta(rs.GetMetadata(), true, dnsSubdomainName)
	s := rs.GetSpec()
	if s == nil {
		return append(errs, field.Required(specPath, ""))
	}
	errs = append(errs, validateReplicas(s.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, validateSelectorAndTemplate(s.GetSelector(), s.GetTemplate(), "replicaset")...)
	errs = append(errs, nonNegative(s.GetMinReadySeconds(), specPath.Child("minReadySeconds"))...)
	return errs
}

func validateReplicas(replicas *int32, fldPath *field.Path) field.ErrorList {
	if replicas == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return nonNegative(*replicas, fldPath)
}

// validateSelectorAndTemplate checks what a Deployment and a ReplicaSet
// share: a non-empty selector that selects the template's own labels, and
// a template that is a valid pod spec restarting Always.
func validateSelectorAndTemplate(sel *api.LabelSelector, tmpl *api.PodTemplateSpec, kind string) field.ErrorList {
	var errs field.ErrorList
	selPath := specPath.Child("selector")
	selectorValid := false
	switch {
	case sel == nil:
		errs = append(errs, field.Required(selPath, ""))
	case selectorIsEmpty(sel):
		errs = append(errs, field.Invalid(selPath, sel, "empty selector is invalid for "+kind))
	default:
		selErrs := validateLabelSelector(sel, selPath)
		errs = append(errs, selErrs...)
		selectorValid = len(selErrs) == 0
	}
	tmplPath := specPath.Child("template")
	if tmpl == nil {
		return append(errs, field.Required(tmplPath, ""))
	}
	labelsPath := tmplPath.Child("metadata", "labels")
	errs = append(errs, validateTemplateMeta(tmpl.GetMetadata(), tmplPath.Child("metadata"))...)
	// Matching is only meaningful for a selector that parsed.
	if selectorValid && !selectorMatches(sel, tmpl.GetMetadata().GetLabels()) {
		errs = append(errs, field.Invalid(labelsPath, tmpl.GetMetadata().GetLabels(), "selector does not match template labels"))
	}
	if tmpl.GetSpec() == nil {
		return append(errs, field.Required(templateSpecPath, ""))
	}
	errs = append(errs, validatePodSpec(tmpl.GetSpec(), templateSpecPath)...)
	if rp := tmpl.GetSpec().GetRestartPolicy(); rp != "" && rp != restartAlways {
		errs = append(errs, field.NotSupported(templateSpecPath.Child("restartPolicy"), rp, []string{restartAlways}))
	}
	if tmpl.GetSpec().ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(templateSpecPath.Child("activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicaSet is not Supported"))
	}
	return errs
}

func validateStrategy(st *api.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if st == nil {
		return errs
	}
	errs = append(errs, validateEnum(st.GetType(), supportedDeploymentStrategies, false, fldPath.Child("type"))...)
	ru := st.GetRollingUpdate()
	if ru == nil {
		return errs
	}
	ruPath := fldPath.Child("rollingUpdate")
	if st.GetType() == strategyRecreate {
		return append(errs, field.Forbidden(ruPath, "may not be specified when strategy `type` is '"+strategyRecreate+"'"))
	}
	surgePath, unavailPath := ruPath.Child("maxSurge"), ruPath.Child("maxUnavailable")
	surgeErrs := validateNonNegativeIntOrPercent(ru.GetMaxSurge(), surgePath)
	unavailErrs := validateNonNegativeIntOrPercent(ru.GetMaxUnavailable(), unavailPath)
	errs = append(errs, surgeErrs...)
	errs = append(errs, unavailErrs...)
	if len(unavailErrs) == 0 {
		if s, ok := intstr.StringValue(ru.GetMaxUnavailable()); ok {
			if pct, _ := intstr.IntOrStringValue(ru.GetMaxUnavailable(), 100, false); pct > 100 {
				errs = append(errs, field.Invalid(unavailPath, s, "must not be greater than 100%"))
			}
		}
	}
	if len(surgeErrs) == 0 && len(unavailErrs) == 0 && isZero(ru.GetMaxSurge()) && isZero(ru.GetMaxUnavailable()) {
		errs = append(errs, field.Invalid(unavailPath, ru.GetMaxUnavailable().AsInterface(), "may not be 0 when `maxSurge` is 0"))
	}
	return errs
}

// isZero reports whether a valid maxSurge/maxUnavailable is 0 or "0%".
func isZero(v *structpb.Value) bool {
	n, err := intstr.IntOrStringValue(v, 100, false)
	return err == nil && n == 0
}
