package informer

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// fakeAPI is an in-memory apiserver for pods with the watch semantics of
// the real one: resume from a version, expiry below the compacted version,
// bookmarks, and streams that can be broken on demand.
type fakeAPI struct {
	api.APIClient // verbs the informer never calls are left nil

	mu        sync.Mutex
	rev       int64
	compacted int64 // watches from a version below this are expired
	objs      map[string]*api.Pod
	history   []*api.WatchEvent
	streams   []*fakeStream
	listErrs  []error // returned by the next List calls, in order
	watchErrs []error // returned by the next Watch streams, in order
	lists     []*api.ListRequest
	watches   []*api.WatchRequest
	watchAt   []time.Time
	paused    chan struct{} // non-nil: Watch blocks until it is closed
}

func newFakeAPI() *fakeAPI { return &fakeAPI{objs: map[string]*api.Pod{}} }

func (f *fakeAPI) client() *client.ResourceClient[*api.Pod] {
	return client.For[*api.Pod](&client.Client{API: f})
}

func pod(ns, name string) *api.Pod {
	return &api.Pod{Metadata: &api.ObjectMeta{Namespace: ns, Name: name}, Spec: &api.PodSpec{}}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

// write stores a change and sends it to every open stream.
func (f *fakeAPI) write(typ client.EventType, p *api.Pod) *api.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev++
	p = proto.Clone(p).(*api.Pod)
	p.Metadata.ResourceVersion = strconv.FormatInt(f.rev, 10)
	if typ == client.Deleted {
		delete(f.objs, kinds.Key(p))
	} else {
		f.objs[kinds.Key(p)] = p
	}
	ev := &api.WatchEvent{Type: typ, Object: mustAny(p), ResourceVersion: p.Metadata.ResourceVersion}
	f.history = append(f.history, ev)
	live := f.streams[:0]
	for _, s := range f.streams {
		if s.ctx.Err() == nil && s.send(ev) {
			live = append(live, s)
		}
	}
	f.streams = live
	return p
}

func (f *fakeAPI) create(p *api.Pod) *api.Pod { return f.write(client.Added, p) }
func (f *fakeAPI) update(p *api.Pod) *api.Pod { return f.write(client.Modified, p) }
func (f *fakeAPI) remove(ns, name string) *api.Pod {
	f.mu.Lock()
	p := f.objs[ns+"/"+name]
	f.mu.Unlock()
	return f.write(client.Deleted, p)
}

// bumpRev advances the revision with a change no watcher of pods sees.
func (f *fakeAPI) bumpRev() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev++
	return strconv.FormatInt(f.rev, 10)
}

// compact forgets history: watches from any older version expire.
func (f *fakeAPI) compact() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.compacted = f.rev
	f.history = nil
}

func (f *fakeAPI) bookmark() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	rv := strconv.FormatInt(f.rev, 10)
	for _, s := range f.streams {
		if s.bookmarks {
			s.send(&api.WatchEvent{Type: client.Bookmark, ResourceVersion: rv})
		}
	}
	return rv
}

// breakWatches fails every open stream with err.
func (f *fakeAPI) breakWatches(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		select {
		case s.errc <- err:
		default: // already failing
		}
	}
	f.streams = nil
}

func (f *fakeAPI) openStreams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.streams {
		if s.ctx.Err() == nil {
			n++
		}
	}
	return n
}

func (f *fakeAPI) pause() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = make(chan struct{})
}

func (f *fakeAPI) resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.paused)
	f.paused = nil
}

func (f *fakeAPI) counts() (lists, watches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lists), len(f.watches)
}

func (f *fakeAPI) watchRequest(n int) *api.WatchRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches[n]
}

func (f *fakeAPI) List(_ context.Context, req *api.ListRequest, _ ...grpc.CallOption) (*api.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, req)
	if len(f.listErrs) > 0 {
		err := f.listErrs[0]
		f.listErrs = f.listErrs[1:]
		return nil, err
	}
	keys := make([]string, 0, len(f.objs))
	for k := range f.objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	resp := &api.ListResponse{ResourceVersion: strconv.FormatInt(f.rev, 10)}
	for _, k := range keys {
		resp.Items = append(resp.Items, mustAny(f.objs[k]))
	}
	return resp, nil
}

func (f *fakeAPI) Watch(ctx context.Context, req *api.WatchRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[api.WatchEvent], error) {
	f.mu.Lock()
	f.watches = append(f.watches, req)
	f.watchAt = append(f.watchAt, time.Now())
	paused := f.paused
	f.mu.Unlock()
	if paused != nil {
		select {
		case <-paused:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeStream{ctx: ctx, events: make(chan *api.WatchEvent, 10000), errc: make(chan error, 1), bookmarks: req.AllowBookmarks}
	if len(f.watchErrs) > 0 {
		s.errc <- f.watchErrs[0]
		f.watchErrs = f.watchErrs[1:]
		return s, nil
	}
	from, err := client.ParseResourceVersion(req.ResourceVersion)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.ResourceVersion != "" && from < f.compacted {
		s.errc <- status.Errorf(codes.OutOfRange, "resourceVersion %d is too old", from)
		return s, nil
	}
	for _, ev := range f.history {
		if rv, _ := strconv.ParseInt(ev.ResourceVersion, 10, 64); rv > from {
			s.send(ev)
		}
	}
	f.streams = append(f.streams, s)
	return s, nil
}

type fakeStream struct {
	grpc.ClientStream
	ctx       context.Context
	events    chan *api.WatchEvent
	errc      chan error
	bookmarks bool
}

func (s *fakeStream) send(ev *api.WatchEvent) bool {
	select {
	case s.events <- ev:
		return true
	default:
		s.errc <- status.Error(codes.ResourceExhausted, "watcher too slow")
		return false
	}
}

// Recv delivers buffered events before a failure, as a TCP stream would.
func (s *fakeStream) Recv() (*api.WatchEvent, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	default:
	}
	select {
	case ev := <-s.events:
		return ev, nil
	case err := <-s.errc:
		return nil, err
	case <-s.ctx.Done():
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
}

// recorder is a Handler that writes down what it is told.
type recorder struct {
	mu     sync.Mutex
	events []string
	same   int // updates whose old and new are the same object (resyncs)
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *recorder) handler() Handler[*api.Pod] {
	return Handler[*api.Pod]{
		OnAdd: func(p *api.Pod) { r.add("add " + kinds.Key(p) + "@" + p.Metadata.ResourceVersion) },
		OnUpdate: func(o, n *api.Pod) {
			if o == n {
				r.mu.Lock()
				r.same++
				r.mu.Unlock()
				r.add("resync " + kinds.Key(n))
				return
			}
			r.add(fmt.Sprintf("update %s@%s->%s", kinds.Key(n), o.Metadata.ResourceVersion, n.Metadata.ResourceVersion))
		},
		OnDelete: func(p *api.Pod) { r.add("delete " + kinds.Key(p)) },
	}
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// noLeakedGoroutines fails if any goroutine still runs an Informer method
// once Run has returned.
func noLeakedGoroutines(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/informer.(*Informer[") {
			t.Errorf("goroutine left running after Run returned:\n%s", g)
		}
	}
}

// start runs inf until the test ends and waits for its first sync.
func start[T kinds.Object](t *testing.T, inf *Informer[T]) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		noLeakedGoroutines(t)
	})
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if !inf.WaitForSync(sctx) {
		t.Fatal("informer did not sync")
	}
}
