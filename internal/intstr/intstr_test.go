package intstr

import (
	"math"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/proto/api"
)

func TestTypeOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    *structpb.Value
		want Type
	}{
		{"nil", nil, Invalid},
		{"integer", FromInt(8080), Int},
		{"negative integer", FromInt(-1), Int},
		{"fraction", structpb.NewNumberValue(1.5), Invalid},
		{"beyond int32", structpb.NewNumberValue(math.MaxInt32 + 1), Invalid},
		{"string", FromString("http"), String},
		{"empty string", FromString(""), String},
		{"bool", structpb.NewBoolValue(true), Invalid},
		{"null", structpb.NewNullValue(), Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TypeOf(tc.v); got != tc.want {
				t.Errorf("TypeOf = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIntOrStringValueScalesPercentages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       *structpb.Value
		total   int
		roundUp bool
		want    int
		wantErr bool
	}{
		{"integer ignores total", FromInt(3), 10, false, 3, false},
		{"25% of 10 rounded up (maxSurge)", FromString("25%"), 10, true, 3, false},
		{"25% of 10 rounded down (maxUnavailable)", FromString("25%"), 10, false, 2, false},
		{"100% of 7", FromString("100%"), 7, false, 7, false},
		{"0%", FromString("0%"), 7, true, 0, false},
		{"25% of 1 rounded up", FromString("25%"), 1, true, 1, false},
		{"25% of 1 rounded down", FromString("25%"), 1, false, 0, false},
		{"string without percent", FromString("5"), 10, false, 0, true},
		{"garbage percent", FromString("x%"), 10, false, 0, true},
		{"nil", nil, 10, false, 0, true},
		{"fraction", structpb.NewNumberValue(0.5), 10, false, 0, true},
		{"bool", structpb.NewBoolValue(false), 10, false, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := IntOrStringValue(tc.v, tc.total, tc.roundUp)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("IntOrStringValue = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPortValueAndResolvePort(t *testing.T) {
	ports := map[string]int32{"http": 8080}
	byName := func(name string) (int32, bool) { p, ok := ports[name]; return p, ok }
	for _, tc := range []struct {
		name       string
		v          *structpb.Value
		wantNumber int32
		wantName   string
		wantErr    bool
		resolved   int32
		resolveErr bool
	}{
		{"number", FromInt(80), 80, "", false, 80, false},
		{"name", FromString("http"), 0, "http", false, 8080, false},
		{"unknown name", FromString("grpc"), 0, "grpc", false, 0, true},
		{"quoted number is a name", FromString("8080"), 0, "8080", false, 0, true},
		{"empty name", FromString(""), 0, "", true, 0, true},
		{"nil", nil, 0, "", true, 0, true},
		{"fraction", structpb.NewNumberValue(80.5), 0, "", true, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, name, err := PortValue(tc.v)
			if (err != nil) != tc.wantErr || n != tc.wantNumber || name != tc.wantName {
				t.Errorf("PortValue = %d, %q, %v; want %d, %q, err %v", n, name, err, tc.wantNumber, tc.wantName, tc.wantErr)
			}
			got, err := ResolvePort(tc.v, byName)
			if (err != nil) != tc.resolveErr || got != tc.resolved {
				t.Errorf("ResolvePort = %d, %v; want %d, err %v", got, err, tc.resolved, tc.resolveErr)
			}
		})
	}
}

func TestFormatAndEqual(t *testing.T) {
	if got := Format(FromInt(8080)); got != "8080" {
		t.Errorf("Format(8080) = %q", got)
	}
	if got := Format(FromString("25%")); got != "25%" {
		t.Errorf("Format(25%%) = %q", got)
	}
	if got := Format(structpb.NewBoolValue(true)); got != "<invalid>" {
		t.Errorf("Format(true) = %q", got)
	}
	if !Equal(FromInt(80), FromInt(80)) || Equal(FromInt(80), FromString("80")) || !Equal(nil, nil) || Equal(nil, FromInt(0)) {
		t.Error("Equal disagrees with IntOrString semantics")
	}
}

func TestContainerPortsFindsANameInAnyContainer(t *testing.T) {
	web := &api.Container{Name: "web", Ports: []*api.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	side := &api.Container{Name: "side", Ports: []*api.ContainerPort{{Name: "metrics", ContainerPort: 9090}, {ContainerPort: 22}}}
	byName := ContainerPorts(web, side)
	tests := []struct {
		name   string
		want   int32
		wantOK bool
	}{
		{"http", 8080, true},
		{"metrics", 9090, true},
		{"ssh", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if got, ok := byName(tt.name); got != tt.want || ok != tt.wantOK {
			t.Errorf("port %q = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
	if _, ok := ContainerPorts()("http"); ok {
		t.Error("no containers found a port")
	}
}
