package integration

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

const (
	benchObjects = 4000
	benchWriters = 32
)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// processCPU is the CPU time this process has used so far (user and
// system). Per-operation CPU is comparable across runs on a loaded machine,
// where wall-clock rates are not.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapAllocs is how many heap objects this process has allocated so far:
// unlike time, a count that load on the machine does not change.
func heapAllocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// runConcurrently calls op(i) for i in [0,n) from `workers` goroutines and
// returns the wall time and each call's latency.
func runConcurrently(b *testing.B, n, workers int, op func(i int) error) (time.Duration, []time.Duration) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return time.Since(start), lat
}

// BenchmarkCreateVsRawEtcd compares pod creates through the API (admission,
// validation, storage, gRPC) with raw puts of the same bytes to the same
// embedded etcd, with the same number of concurrent writers.
func BenchmarkCreateVsRawEtcd(b *testing.B) {
	etcdURL := freeLoopbackURL(b)
	c := testcluster.Start(b, func(cfg *app.Config) { cfg.EtcdListenClient = etcdURL })
	ctx := context.Background()
	pods := c.Client.Pods()
	// The apiserver reaches its embedded etcd in-process: the baseline puts
	// go through that same client. Puts over the etcd's client port, as any
	// other etcd client makes them, are reported beside them.
	etcd := c.Store().Client()
	netEtcd, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { netEtcd.Close() })
	for i := 0; i < b.N; i++ {
		prefix := fmt.Sprintf("r%d-", i)
		raw, err := proto.Marshal(nginxPod("sample"))
		if err != nil {
			b.Fatal(err)
		}
		put := func(cli *clientv3.Client, key string) func(int) error {
			return func(j int) error {
				_, err := cli.Put(ctx, fmt.Sprintf("/bench/%s%s%d", key, prefix, j), string(raw))
				return err
			}
		}
		cpu0, allocs0 := processCPU(b), heapAllocs()
		rawWall, _ := runConcurrently(b, benchObjects, benchWriters, put(etcd, ""))
		cpu1, allocs1 := processCPU(b), heapAllocs()
		netWall, _ := runConcurrently(b, benchObjects, benchWriters, put(netEtcd, "net-"))
		cpu2, allocs2 := processCPU(b), heapAllocs()
		apiWall, lat := runConcurrently(b, benchObjects, benchWriters, func(j int) error {
			_, err := pods.Create(ctx, nginxPod(fmt.Sprintf("%s%d", prefix, j)))
			return err
		})
		cpu3, allocs3 := processCPU(b), heapAllocs()
		rawRate := float64(benchObjects) / rawWall.Seconds()
		netRate := float64(benchObjects) / netWall.Seconds()
		apiRate := float64(benchObjects) / apiWall.Seconds()
		b.ReportMetric(rawRate, "etcd-puts/s")
		b.ReportMetric(netRate, "etcd-net-puts/s")
		b.ReportMetric(apiRate, "creates/s")
		b.ReportMetric(apiRate/rawRate, "creates/puts")
		b.ReportMetric(apiRate/netRate, "creates/net-puts")
		b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/benchObjects, "cpu-µs/put")
		b.ReportMetric(float64((cpu2-cpu1).Microseconds())/benchObjects, "cpu-µs/net-put")
		b.ReportMetric(float64((cpu3-cpu2).Microseconds())/benchObjects, "cpu-µs/create")
		b.ReportMetric(float64(allocs1-allocs0)/benchObjects, "allocs/put")
		b.ReportMetric(float64(allocs2-allocs1)/benchObjects, "allocs/net-put")
		b.ReportMetric(float64(allocs3-allocs2)/benchObjects, "allocs/create")
	}
}

// freeLoopbackURL is an http URL on a loopback port free right now.
func freeLoopbackURL(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// BenchmarkWatchDelivery1000Watchers measures the time from the start of a
// create to its event reaching each of 1000 watchers. The watchers come
// over 20 client connections, as from many components, not one. Two event
// rates: 100 creates/s (100,000 deliveries/s, more than this 2-core machine
// can decode when the 1000 client decoders share it with the server, so
// its tail is queueing) and 20 creates/s (20,000 deliveries/s).
func BenchmarkWatchDelivery1000Watchers(b *testing.B) {
	for _, interval := range []time.Duration{10 * time.Millisecond, 50 * time.Millisecond} {
		b.Run("interval="+interval.String(), func(b *testing.B) { benchmarkWatchDelivery(b, interval) })
	}
}

// benchmarkWatchDelivery creates 100 pods, interval apart, while 1000
// watchers receive them.
func benchmarkWatchDelivery(b *testing.B, interval time.Duration) {
	c := testcluster.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pods := c.Client.Pods()
	const watchers, events, conns = 1000, 100, 20
	clients := make([]*client.ResourceClient[*api.Pod], conns)
	for i := range clients {
		conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		clients[i] = client.New(conn).Pods()
	}
	for iter := 0; iter < b.N; iter++ {
		sent := make([]atomic.Int64, events)
		var mu sync.Mutex
		var lat []time.Duration
		var ready, done sync.WaitGroup
		ready.Add(watchers)
		done.Add(watchers)
		prefix := fmt.Sprintf("w%d-", iter)
		for w := 0; w < watchers; w++ {
			go func() {
				defer done.Done()
				wt, err := clients[w%conns].Watch(ctx, "default", client.ListOptions{LabelSelector: "bench=" + prefix[:len(prefix)-1], ResourceVersion: "0"})
				ready.Done()
				if err != nil {
					b.Error(err)
					return
				}
				local := make([]time.Duration, 0, events)
				for len(local) < events {
					ev, err := wt.Next()
					if err != nil {
						b.Error(err)
						return
					}
					// The harness shares the CPU it measures: no fmt.Sscanf.
					n, ok := strings.CutPrefix(ev.Object.GetMetadata().GetName(), prefix)
					idx, err := strconv.Atoi(n)
					if !ok || err != nil || idx < 0 || idx >= events {
						continue
					}
					local = append(local, time.Since(time.Unix(0, sent[idx].Load())))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
		}
		ready.Wait()
		time.Sleep(200 * time.Millisecond) // let every watch register
		cpu0, allocs0 := processCPU(b), heapAllocs()
		for i := 0; i < events; i++ {
			p := nginxPod(fmt.Sprintf("%s%d", prefix, i))
			p.Metadata.Labels["bench"] = prefix[:len(prefix)-1]
			sent[i].Store(time.Now().UnixNano())
			if _, err := pods.Create(ctx, p); err != nil {
				b.Fatal(err)
			}
			time.Sleep(interval)
		}
		done.Wait()
		cpu, allocs := processCPU(b)-cpu0, heapAllocs()-allocs0
		b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
		// Server and client CPU per delivered event (both run here).
		b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(watchers*events), "cpu-µs/delivery")
		b.ReportMetric(float64(allocs)/float64(watchers*events), "allocs/delivery")
	}
}
