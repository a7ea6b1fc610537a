package plugins

import (
	"context"
	"testing"

	"github.com/skiff-dev/skiff/scheduler/config"
	"github.com/skiff-dev/skiff/scheduler/framework"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestScoresHonourWeights(t *testing.T) {
	scores, err := Scores(map[string]int64{"PodTopologySpread": 2, "NodeResourcesLeastAllocated": 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != 1 || scores[0].Name() != "PodTopologySpread" || scores[0].Weight != 2 {
		t.Errorf("scores = %+v, want only PodTopologySpread at weight 2 (weight 0 disables)", scores)
	}
	if _, err := Scores(map[string]int64{"MostAllocated": 1}); err == nil {
		t.Error("an unknown plugin was accepted")
	}
}

// A node with more free resources but one sibling replica: spreading wins
// with the default weights, free resources win when spreading is off.
func TestWeightsDecideBetweenSpreadAndFreeResources(t *testing.T) {
	busyEmpty := st.NodeInfo(t, st.MakeNode("busy-no-sibling").Obj(), st.MakePod("x").Req("3", "6Gi").Obj())
	freeSibling := st.NodeInfo(t, st.MakeNode("free-with-sibling").Obj(), st.MakePod("s").Owner("rs").Req("100m", "100Mi").Obj())
	nodes := []*framework.NodeInfo{busyEmpty, freeSibling}
	pod := st.PodInfo(t, st.MakePod("p").Owner("rs").Req("100m", "100Mi").Obj())
	tests := []struct {
		name    string
		weights map[string]int64
		want    string
	}{
		{"spreading heavier", map[string]int64{config.PodTopologySpread: 10, config.LeastAllocated: 1}, "busy-no-sibling"},
		{"spreading off", map[string]int64{config.PodTopologySpread: 0, config.LeastAllocated: 1}, "free-with-sibling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.ScoreWeights = tt.weights
			cfg.Parallelism = 1
			fw, err := NewFramework(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := fw.Schedule(context.Background(), pod, nodes)
			if err != nil {
				t.Fatal(err)
			}
			if res.SuggestedHost != tt.want {
				t.Errorf("host = %s, want %s", res.SuggestedHost, tt.want)
			}
		})
	}
}
