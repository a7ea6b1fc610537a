package admission

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// Admission runs on every write; these keep its cost per object visible.
func benchmarkAdmission(b *testing.B, obj kinds.Object) {
	b.ReportAllocs()
	for b.Loop() {
		o := proto.Clone(obj).(kinds.Object)
		Default(o)
		if err := ValidateCreate(o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAdmitPod(b *testing.B)        { benchmarkAdmission(b, validPod()) }
func BenchmarkAdmitDeployment(b *testing.B) { benchmarkAdmission(b, validDeployment()) }
func BenchmarkAdmitService(b *testing.B)    { benchmarkAdmission(b, validService()) }
func BenchmarkAdmitConfigMap(b *testing.B)  { benchmarkAdmission(b, validConfigMap()) }
