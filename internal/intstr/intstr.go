// Package intstr reads the Kubernetes IntOrString fields of Skiff's API
// (targetPort, maxSurge, maxUnavailable, probe ports). The API carries them as
// google.protobuf.Value so that manifests may write 8080, "http" or "25%"
// exactly as they would for Kubernetes.
//
// It must never guess: a value that is neither an integral number nor a
// string is an error, and a string is a name or a percentage, never a number
// in disguise ("8080" in quotes is a port name, as in Kubernetes).
package intstr

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/proto/api"
)

// Type says what an IntOrString value holds.
type Type int

const (
	// Invalid is anything but an integral number or a string: a missing
	// value, null, a fraction, a bool, a list or a struct.
	Invalid Type = iota
	// Int is an integral number within the int32 range.
	Int
	// String is a string (a port name or a percentage).
	String
)

// FromInt returns the Value holding the number i.
func FromInt(i int) *structpb.Value { return structpb.NewNumberValue(float64(i)) }

// FromString returns the Value holding the string s.
func FromString(s string) *structpb.Value { return structpb.NewStringValue(s) }

// TypeOf says what v holds; Int only for integral numbers within int32, as
// Kubernetes' IntOrString stores an int32.
func TypeOf(v *structpb.Value) Type {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		f := k.NumberValue
		if f == math.Trunc(f) && f >= math.MinInt32 && f <= math.MaxInt32 {
			return Int
		}
	case *structpb.Value_StringValue:
		return String
	}
	return Invalid
}

// IntValue returns the integer v holds; ok is false unless TypeOf(v) is Int.
func IntValue(v *structpb.Value) (n int, ok bool) {
	if TypeOf(v) != Int {
		return 0, false
	}
	return int(v.GetNumberValue()), true
}

// StringValue returns the string v holds; ok is false unless TypeOf(v) is String.
func StringValue(v *structpb.Value) (s string, ok bool) {
	if k, isStr := v.GetKind().(*structpb.Value_StringValue); isStr {
		return k.StringValue, true
	}
	return "", false
}

// Format renders v as a person wrote it: 8080, http, 25%; "<invalid>" for
// anything else.
func Format(v *structpb.Value) string {
	switch TypeOf(v) {
	case Int:
		return strconv.Itoa(int(v.GetNumberValue()))
	case String:
		return v.GetStringValue()
	}
	return "<invalid>"
}

// Equal reports whether a and b hold the same integer or the same string.
func Equal(a, b *structpb.Value) bool {
	ta, tb := TypeOf(a), TypeOf(b)
	if ta != tb {
		return false
	}
	switch ta {
	case Int:
		return a.GetNumberValue() == b.GetNumberValue()
	case String:
		return a.GetStringValue() == b.GetStringValue()
	}
	return proto.Equal(a, b)
}

// IntOrStringValue scales v against total: an integer is returned as is, a
// percentage "N%" becomes N% of total, rounded up when roundUp (maxSurge)
// and down otherwise (maxUnavailable). This is Kubernetes'
// GetScaledValueFromIntOrPercent.
func IntOrStringValue(v *structpb.Value, total int, roundUp bool) (int, error) {
	switch TypeOf(v) {
	case Int:
		return int(v.GetNumberValue()), nil
	case String:
		s := v.GetStringValue()
		digits, isPercent := strings.CutSuffix(s, "%")
		if !isPercent {
			return 0, fmt.Errorf("invalid value %q: a string must be a percentage such as \"25%%\"", s)
		}
		pct, err := strconv.Atoi(digits)
		if err != nil {
			return 0, fmt.Errorf("invalid value %q: %w", s, err)
		}
		scaled := float64(pct) * float64(total) / 100
		if roundUp {
			return int(math.Ceil(scaled)), nil
		}
		return int(math.Floor(scaled)), nil
	}
	if v == nil {
		return 0, errors.New("no value: want an integer or a percentage")
	}
	return 0, fmt.Errorf("invalid value %v: want an integer or a percentage", v.AsInterface())
}

// PortValue splits a port given as IntOrString into a number or a name
// (exactly one of them is set). It checks the shape only: the number's
// range and the name's syntax are the caller's (admission's) to validate.
func PortValue(v *structpb.Value) (number int32, name string, err error) {
	switch TypeOf(v) {
	case Int:
		return int32(v.GetNumberValue()), "", nil
	case String:
		if s := v.GetStringValue(); s != "" {
			return 0, s, nil
		}
		return 0, "", errors.New("empty port name")
	}
	if v == nil {
		return 0, "", errors.New("no port given")
	}
	return 0, "", fmt.Errorf("invalid port %v: want a number or a port name", v.AsInterface())
}

// ContainerPorts looks a port name up among the ports of containers (a
// pod's, for a Service's targetPort; one container's, for its probes): the
// byName of ResolvePort.
func ContainerPorts(containers ...*api.Container) func(name string) (int32, bool) {
	return func(name string) (int32, bool) {
		if name == "" { // unnamed ports have no name to match
			return 0, false
		}
		for _, c := range containers {
			for _, p := range c.GetPorts() {
				if p.GetName() == name {
					return p.GetContainerPort(), true
				}
			}
		}
		return 0, false
	}
}

// ResolvePort returns the port number v designates, looking a name up with
// byName (a pod's container ports, for a Service's targetPort or a probe).
func ResolvePort(v *structpb.Value, byName func(name string) (int32, bool)) (int32, error) {
	number, name, err := PortValue(v)
	if err != nil {
		return 0, err
	}
	if name == "" {
		return number, nil
	}
	if byName != nil {
		if n, ok := byName(name); ok {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no port named %q", name)
}
