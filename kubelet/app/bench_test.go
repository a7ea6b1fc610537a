package app

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/kubelet/runtime"
)

const benchPods = 20

// BenchmarkPodStart measures pod start latency — create to Running as a
// watcher sees it — for 20 pods created at once, against 20 bare containerd
// runs started at once (`ctr run -d`: snapshot, spec, task start) of the
// same image on the same machine, and reports the ratio of the means.
func BenchmarkPodStart(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	bare := bareRunLatency(b, e)
	var podMean, podP50, podMax time.Duration
	for i := 0; i < b.N; i++ {
		lat := podStartLatencies(b, e, i)
		podMean, podP50, podMax = stats(lat)
		b.StopTimer()
		zero := int64(0)
		for j := 0; j < benchPods; j++ {
			// Graceful delete: the kubelet stops and removes the pod.
			if _, err := e.pods().Delete(ctx, "default", fmt.Sprintf("bench-%d-%d", i, j), client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !client.IsNotFound(err) {
				b.Fatal(err)
			}
		}
		// Wait for the kubelet to tear them down, so the next round (and
		// the clean-up) starts from an empty node.
		deadline := time.Now().Add(2 * time.Minute)
		for len(e.containers(b)) > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("%d containers left 2m after deleting the pods", len(e.containers(b)))
			}
			time.Sleep(200 * time.Millisecond)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(podMean.Milliseconds()), "pod-start-mean-ms")
	b.ReportMetric(float64(podP50.Milliseconds()), "pod-start-p50-ms")
	b.ReportMetric(float64(podMax.Milliseconds()), "pod-start-max-ms")
	b.ReportMetric(float64(bare.Milliseconds()), "bare-run-mean-ms")
	b.ReportMetric(float64(podMean)/float64(bare), "pod/bare-ratio")
}

// podStartLatencies creates benchPods pods at once and returns, for each,
// the time from its Create call to the first watch event showing it Running.
func podStartLatencies(b *testing.B, e *env, round int) []time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, rv, err := e.pods().List(ctx, "default", client.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	w, err := e.pods().Watch(ctx, "default", client.ListOptions{ResourceVersion: rv, FieldSelector: "spec.nodeName=" + e.cfg.NodeName})
	if err != nil {
		b.Fatal(err)
	}
	runningAt := map[string]time.Time{}
	done := make(chan error, 1)
	go func() {
		for len(runningAt) < benchPods {
			ev, err := w.Next()
			if err != nil {
				done <- err
				return
			}
			if ev.Object != nil && running(ev.Object) {
				name := ev.Object.GetMetadata().GetName()
				if _, ok := runningAt[name]; !ok {
					runningAt[name] = time.Now()
				}
			}
		}
		done <- nil
	}()
	start := make(map[string]time.Time, benchPods)
	for j := 0; j < benchPods; j++ {
		name := fmt.Sprintf("bench-%d-%d", round, j)
		start[name] = time.Now()
		e.createPod(name, busybox("main", "sleep 3600"))
	}
	if err := <-done; err != nil {
		b.Fatalf("watch: %v", err)
	}
	out := make([]time.Duration, 0, benchPods)
	for name, t := range runningAt {
		out = append(out, t.Sub(start[name]))
	}
	return out
}

// bareRunLatency runs benchPods containers of the same image straight on
// containerd at once, each as `ctr run -d` would (snapshot, spec, task
// start), and returns the mean time from the start to a started task.
func bareRunLatency(b *testing.B, e *env) time.Duration {
	c := e.ctrd.Client(b, "skiff-bench")
	rt, err := runtime.New(runtime.Config{Address: e.ctrd.Address, Namespace: "skiff-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	// The same preloaded tarball, imported in the benchmark's namespace.
	if _, err := rt.ImportDir(context.Background(), e.cfg.ImagePreloadDir); err != nil {
		b.Fatal(err)
	}
	bctx := containerdNSNamed("skiff-bench")
	img, err := c.GetImage(bctx, "docker.io/library/busybox:latest")
	if err != nil {
		b.Fatal(err)
	}
	// All at once, as the pods are created, each timed from the common
	// start: the same queueing as the kubelet faces.
	lat := make([]time.Duration, benchPods)
	errs := make(chan error, benchPods)
	t0 := time.Now()
	for i := 0; i < benchPods; i++ {
		go func() {
			id := fmt.Sprintf("bare-%d", i)
			ctr, err := c.NewContainer(bctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
				containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "3600")))
			if err != nil {
				errs <- err
				return
			}
			task, err := ctr.NewTask(bctx, cio.NullIO)
			if err == nil {
				err = task.Start(bctx)
			}
			lat[i] = time.Since(t0)
			errs <- err
		}()
	}
	for i := 0; i < benchPods; i++ {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < benchPods; i++ {
		id := fmt.Sprintf("bare-%d", i)
		// runc's delete can fail transiently on a loaded machine: retry.
		var err error
		for try := 0; try < 5; try++ {
			if err = rt.StopContainer(context.Background(), id, 0); err == nil {
				if err = rt.RemoveContainer(context.Background(), id); err == nil {
					break
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	mean, _, _ := stats(lat)
	return mean
}

func stats(d []time.Duration) (mean, p50, maxD time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	return sum / time.Duration(len(s)), s[len(s)/2], s[len(s)-1]
}
