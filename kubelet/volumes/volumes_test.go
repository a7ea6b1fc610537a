package volumes

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/internal/mounts"
	"github.com/skiff-dev/skiff/proto/api"
)

// objects is a fake apiserver for one kind: a map the test edits.
type objects[T any] struct {
	mu   sync.Mutex
	objs map[string]T
}

func (o *objects[T]) Get(_ context.Context, namespace, name string) (T, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, ok := o.objs[namespace+"/"+name]
	if !ok {
		var zero T
		return zero, status.Errorf(codes.NotFound, "%s not found", name)
	}
	return obj, nil
}

func (o *objects[T]) remove(namespace, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.objs, namespace+"/"+name)
}

func (o *objects[T]) set(namespace, name string, obj T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.objs == nil {
		o.objs = map[string]T{}
	}
	o.objs[namespace+"/"+name] = obj
}

type fixture struct {
	m          *Manager
	root       string
	configMaps *objects[*api.ConfigMap]
	secrets    *objects[*api.Secret]
}

// newFixture is a volume manager on a temp root; whatever stays mounted
// below the root when the test ends is unmounted before the temp dir goes.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root (mounts)")
		}
		t.Skip("needs root (mounts)")
	}
	root := t.TempDir()
	t.Cleanup(func() {
		if err := mounts.UnmountAll(root); err != nil {
			t.Errorf("clean up mounts: %v", err)
		}
	})
	f := &fixture{root: root, configMaps: &objects[*api.ConfigMap]{}, secrets: &objects[*api.Secret]{}}
	f.m = New(Config{RootDir: filepath.Join(root, "kubelet"), ConfigMaps: f.configMaps, Secrets: f.secrets,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	return f
}

func testPod(uid string, volumes ...*api.Volume) *api.Pod {
	return &api.Pod{
		Metadata: &api.ObjectMeta{Uid: uid, Namespace: "default", Name: "p"},
		Spec:     &api.PodSpec{Volumes: volumes},
	}
}

func mounted(t *testing.T, path string) bool {
	t.Helper()
	ok, err := mountinfo.Mounted(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return ok
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHostPathTypeChecks(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	var block string
	if info, err := os.Stat("/dev/loop0"); err == nil && info.Mode()&fs.ModeDevice != 0 && info.Mode()&fs.ModeCharDevice == 0 {
		block = "/dev/loop0"
	}

	tests := []struct {
		name, path, typ string
		wantErr         string // empty: no error
		wantDir         bool   // the path is a directory afterwards
		wantFile        bool   // the path is a regular file afterwards
	}{
		{name: "unset checks nothing", path: filepath.Join(dir, "missing"), typ: ""},
		{name: "DirectoryOrCreate makes the directory and its parents", path: filepath.Join(dir, "new/a/b"), typ: "DirectoryOrCreate", wantDir: true},
		{name: "DirectoryOrCreate on a file", path: file, typ: "DirectoryOrCreate", wantErr: "is not a directory"},
		{name: "Directory exists", path: dir, typ: "Directory", wantDir: true},
		{name: "Directory missing", path: filepath.Join(dir, "nodir"), typ: "Directory", wantErr: "does not exist"},
		{name: "Directory on a file", path: file, typ: "Directory", wantErr: "is not a directory"},
		{name: "FileOrCreate makes an empty file", path: filepath.Join(dir, "created"), typ: "FileOrCreate", wantFile: true},
		{name: "FileOrCreate needs the parent", path: filepath.Join(dir, "noparent/f"), typ: "FileOrCreate", wantErr: "create file"},
		{name: "FileOrCreate on a directory", path: dir, typ: "FileOrCreate", wantErr: "is not a file"},
		{name: "File exists", path: file, typ: "File", wantFile: true},
		{name: "File missing", path: filepath.Join(dir, "nofile"), typ: "File", wantErr: "does not exist"},
		{name: "Socket", path: sock, typ: "Socket"},
		{name: "Socket on a file", path: file, typ: "Socket", wantErr: "is not a socket file"},
		{name: "CharDevice", path: "/dev/null", typ: "CharDevice"},
		{name: "CharDevice on a directory", path: dir, typ: "CharDevice", wantErr: "is not a character device"},
		{name: "BlockDevice on a character device", path: "/dev/null", typ: "BlockDevice", wantErr: "is not a block device"},
		{name: "BlockDevice on a file", path: file, typ: "BlockDevice", wantErr: "is not a block device"},
	}
	if block != "" {
		tests = append(tests, struct {
			name, path, typ string
			wantErr         string
			wantDir         bool
			wantFile        bool
		}{name: "BlockDevice", path: block, typ: "BlockDevice"})
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod("hp"+string(rune('a'+i)), &api.Volume{Name: "h", HostPath: &api.HostPathVolumeSource{Path: tc.path, Type: tc.typ}})
			err := f.m.SetUp(context.Background(), pod)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("SetUp: %v", err)
				}
			} else {
				var se *SetUpError
				if !errors.As(err, &se) || se.Volume != "h" || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "hostPath type check failed") {
					t.Fatalf("SetUp error %v, want a SetUpError for volume h containing %q", err, tc.wantErr)
				}
				return
			}
			info, err := os.Stat(tc.path)
			switch {
			case tc.wantDir && (err != nil || !info.IsDir()):
				t.Errorf("%s is not a directory after SetUp: %v", tc.path, err)
			case tc.wantFile && (err != nil || !info.Mode().IsRegular()):
				t.Errorf("%s is not a file after SetUp: %v", tc.path, err)
			case tc.typ == "FileOrCreate" && tc.wantFile && info.Mode().Perm() != 0o644:
				t.Errorf("created file mode %v, want 0644", info.Mode().Perm())
			}
			// The mount is the host path itself, writable unless asked.
			specMounts, err := f.m.Mounts(pod, &api.Container{Name: "c", VolumeMounts: []*api.VolumeMount{{Name: "h", MountPath: "/h", ReadOnly: true}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(specMounts) != 1 || specMounts[0].Source != tc.path || !slices.Contains(specMounts[0].Options, "ro") {
				t.Errorf("mounts %+v, want a read-only bind of %s", specMounts, tc.path)
			}
		})
	}
}

func configMapFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		if e.Type()&fs.ModeSymlink == 0 {
			t.Errorf("key %s is not a symlink into ..data", e.Name())
		}
		out[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
	}
	return out
}

func TestConfigMapVolumeUpdatesAtomically(t *testing.T) {
	f := newFixture(t)
	f.configMaps.set("default", "cfg", &api.ConfigMap{Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"bin": {0, 1, 2}}})
	pod := testPod("cm", &api.Volume{Name: "config", ConfigMap: &api.ConfigMapVolumeSource{Name: "cfg"}})
	ctx := context.Background()
	if err := f.m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	dir := f.m.volumeDir("cm", PluginConfigMap, "config")
	if got := configMapFiles(t, dir); !maps(got, map[string]string{"a": "1", "b": "2", "bin": "\x00\x01\x02"}) {
		t.Fatalf("files %q", got)
	}
	if info, err := os.Stat(filepath.Join(dir, "a")); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("key mode: %v %v, want 0644", info.Mode(), err)
	}
	first, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil || !strings.HasPrefix(first, "..") {
		t.Fatalf("..data -> %q (%v), want a timestamped dir", first, err)
	}
	// A reader that opened a key keeps reading the version it opened.
	held, err := os.Open(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })

	// An unchanged ConfigMap publishes no new version.
	if err := f.m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, dataDirName)); again != first {
		t.Errorf("an unchanged ConfigMap swapped ..data: %s -> %s", first, again)
	}

	// An update changes a, drops b and bin, adds c: in one swap.
	f.configMaps.set("default", "cfg", &api.ConfigMap{Data: map[string]string{"a": "one", "c": "3"}})
	if err := f.m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := configMapFiles(t, dir); !maps(got, map[string]string{"a": "one", "c": "3"}) {
		t.Fatalf("files after update %q", got)
	}
	second, _ := os.Readlink(filepath.Join(dir, dataDirName))
	if second == first {
		t.Fatal("..data still names the first version")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{dataDirName, second, "a", "c"}; !slices.Equal(names, sortedCopy(want)) {
		t.Errorf("dir holds %v, want %v: the old version, dropped keys and the temporary link are gone", names, sortedCopy(want))
	}
	b := make([]byte, 8)
	n, _ := held.Read(b)
	if string(b[:n]) != "1" {
		t.Errorf("a reader of the old version read %q, want 1: a version is never rewritten in place", b[:n])
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestAtomicWriterRefusesKeysThatLeaveTheDirectory(t *testing.T) {
	for _, key := range []string{"..data", "../x", "a/b", ".", "..", "..x", ""} {
		t.Run(key, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := writeAtomic(dir, map[string]file{key: {data: []byte("x"), mode: 0o644}}); err == nil {
				t.Fatalf("key %q accepted", key)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("refused write left %v", entries)
			}
		})
	}
}

func TestSecretVolumeOnTmpfsAndMissingObjects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pod := testPod("sec",
		&api.Volume{Name: "creds", Secret: &api.SecretVolumeSource{SecretName: "db"}},
		&api.Volume{Name: "config", ConfigMap: &api.ConfigMapVolumeSource{Name: "later"}},
	)
	// Neither object exists: both volumes fail, each named, NotFound.
	err := f.m.SetUp(ctx, pod)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `volume "creds": secret "db" not found`) ||
		!strings.Contains(err.Error(), `volume "config": configmap "later" not found`) {
		t.Fatalf("SetUp error %v, want both volumes not found", err)
	}
	if !Blocking(err) {
		t.Error("volumes never set up do not block the containers")
	}
	if _, err := f.m.Mounts(pod, &api.Container{Name: "c", VolumeMounts: []*api.VolumeMount{{Name: "config", MountPath: "/cfg"}}}); err == nil {
		t.Error("Mounts of a volume never set up succeeded")
	}

	f.secrets.set("default", "db", &api.Secret{Data: map[string][]byte{"password": []byte("s3cret"), "user": []byte("admin")}})
	f.configMaps.set("default", "later", &api.ConfigMap{Data: map[string]string{"k": "v"}})
	if err := f.m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	dir := f.m.volumeDir("sec", PluginSecret, "creds")
	if !mounted(t, dir) {
		t.Fatal("the secret volume is not a mount (tmpfs)")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Errorf("secret volume filesystem %x (%v), want tmpfs", st.Type, err)
	}
	if got := configMapFiles(t, dir); !maps(got, map[string]string{"password": "s3cret", "user": "admin"}) {
		t.Errorf("secret files %q, want the secret's data", got)
	}
	if info, err := os.Stat(f.m.VolumesDir("sec")); err != nil || info.Mode().Perm() != 0o750 {
		t.Errorf("volumes dir mode %v (%v), want 0750", info.Mode().Perm(), err)
	}
	specMounts, err := f.m.Mounts(pod, &api.Container{Name: "c", VolumeMounts: []*api.VolumeMount{{Name: "creds", MountPath: "/secret"}, {Name: "config", MountPath: "/cfg"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range specMounts {
		if !slices.Contains(mt.Options, "ro") {
			t.Errorf("%s mounted %v: configMap and secret volumes are always read-only", mt.Destination, mt.Options)
		}
	}
	// A second SetUp does not stack another tmpfs.
	if err := f.m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if mps, _ := mounts.Under(dir); len(mps) != 1 {
		t.Errorf("mounts on the secret dir: %v, want one", mps)
	}
	// A ConfigMap deleted under a running pod: the volume keeps its last
	// contents and still mounts (a container restart is not blocked).
	f.configMaps.remove("default", "later")
	err = f.m.SetUp(ctx, pod)
	var se *SetUpError
	if !errors.As(err, &se) || !se.Stale || Blocking(err) {
		t.Errorf("SetUp after the ConfigMap went: %v (stale %v), want a stale, non-blocking error", err, se != nil && se.Stale)
	}
	if got := readFile(t, filepath.Join(f.m.volumeDir("sec", PluginConfigMap, "config"), "k")); got != "v" {
		t.Errorf("stale ConfigMap volume shows %q, want its last contents", got)
	}
	if _, err := f.m.Mounts(pod, &api.Container{Name: "c", VolumeMounts: []*api.VolumeMount{{Name: "config", MountPath: "/cfg"}}}); err != nil {
		t.Errorf("Mounts of a stale volume: %v", err)
	}
	if err := f.m.TearDown("sec"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.m.VolumesDir("sec")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("volumes dir left: %v", err)
	}
}

func TestMemoryEmptyDirIsASizedTmpfs(t *testing.T) {
	f := newFixture(t)
	pod := testPod("mem", &api.Volume{Name: "cache", EmptyDir: &api.EmptyDirVolumeSource{Medium: "Memory", SizeLimit: "1Mi"}},
		&api.Volume{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{}})
	if err := f.m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	dir := f.m.volumeDir("mem", PluginEmptyDir, "cache")
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.TMPFS_MAGIC || st.Blocks*uint64(st.Bsize) != 1<<20 {
		t.Errorf("memory emptyDir: type %x size %d (%v), want a 1Mi tmpfs", st.Type, st.Blocks*uint64(st.Bsize), err)
	}
	disk := f.m.volumeDir("mem", PluginEmptyDir, "scratch")
	if info, err := os.Stat(disk); err != nil || info.Mode().Perm() != 0o777 || mounted(t, disk) {
		t.Errorf("disk emptyDir: %v %v, want a world-writable plain directory", info, err)
	}
	if err := f.m.TearDown("mem"); err != nil {
		t.Fatal(err)
	}
	if mps, _ := mounts.Under(f.root); len(mps) != 0 {
		t.Errorf("mounts left: %v", mps)
	}
}

func TestTearDownNeverDeletesHostPathFiles(t *testing.T) {
	f := newFixture(t)
	host := t.TempDir()
	for _, p := range []string{"top", "sub/inner", "sub/deeper/file"} {
		if err := os.MkdirAll(filepath.Join(host, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pod := testPod("hp",
		&api.Volume{Name: "host", HostPath: &api.HostPathVolumeSource{Path: host, Type: "Directory"}},
		&api.Volume{Name: "mem", EmptyDir: &api.EmptyDirVolumeSource{Medium: "Memory"}},
		&api.Volume{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{}},
	)
	if err := f.m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	c := &api.Container{Name: "c", VolumeMounts: []*api.VolumeMount{
		{Name: "host", MountPath: "/host"},
		{Name: "host", MountPath: "/sub", SubPath: "sub"},
		{Name: "host", MountPath: "/file", SubPath: "sub/deeper/file"},
		{Name: "mem", MountPath: "/mem", SubPath: "made/here"},
		{Name: "scratch", MountPath: "/scratch"},
	}}
	specMounts, err := f.m.Mounts(pod, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(specMounts[1].Source, "inner")); got != "sub/inner" {
		t.Errorf("subPath dir mount shows %q", got)
	}
	if got := readFile(t, specMounts[2].Source); got != "sub/deeper/file" {
		t.Errorf("subPath file mount shows %q", got)
	}
	if info, err := os.Stat(filepath.Join(f.m.volumeDir("hp", PluginEmptyDir, "mem"), "made/here")); err != nil || !info.IsDir() {
		t.Errorf("emptyDir subPath not created: %v", err)
	}
	// A second run of the container re-binds its subPaths in place.
	if _, err := f.m.Mounts(pod, c); err != nil {
		t.Fatal(err)
	}
	// A bind of the host directory the kubelet did not make itself, inside
	// the volumes dir (as a crash or an older layout might leave).
	planted := filepath.Join(f.m.VolumesDir("hp"), PluginEmptyDir, "scratch", "planted")
	if err := os.Mkdir(planted, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, planted, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}

	if err := f.m.RemovePodDir("hp"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"top", "sub/inner", "sub/deeper/file"} {
		if got := readFile(t, filepath.Join(host, p)); got != p {
			t.Errorf("host file %s = %q after teardown", p, got)
		}
	}
	if _, err := os.Stat(f.m.PodDir("hp")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pod dir left: %v", err)
	}
	if mps, _ := mounts.Under(f.root); len(mps) != 0 {
		t.Errorf("mounts left: %v", mps)
	}
	// Tearing down again (a retried teardown) is fine.
	if err := f.m.TearDown("hp"); err != nil {
		t.Errorf("second TearDown: %v", err)
	}
}

func TestSubPathThatEscapesTheVolumeIsRefused(t *testing.T) {
	f := newFixture(t)
	pod := testPod("esc", &api.Volume{Name: "data", EmptyDir: &api.EmptyDirVolumeSource{}})
	if err := f.m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	vol := f.m.volumeDir("esc", PluginEmptyDir, "data")
	// What a container could plant in its writable emptyDir.
	for link, target := range map[string]string{"to-root": "/", "up": "../../../..", "inside": "real"} {
		if err := os.Symlink(target, filepath.Join(vol, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(vol, "real/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sub    string
		escape bool
	}{
		{sub: "../../x", escape: true},
		{sub: "/etc", escape: true},
		{sub: "a/../../x", escape: true},
		{sub: "to-root/etc", escape: true},
		{sub: "to-root", escape: true},
		{sub: "up", escape: true},
		{sub: "up/x/y", escape: true},
		{sub: "inside/dir"},
		{sub: "new/dirs"},
	}
	for i, tc := range tests {
		t.Run(tc.sub, func(t *testing.T) {
			c := &api.Container{Name: "c" + string(rune('a'+i)), VolumeMounts: []*api.VolumeMount{{Name: "data", MountPath: "/data", SubPath: tc.sub}}}
			specMounts, err := f.m.Mounts(pod, c)
			if !tc.escape {
				if err != nil || len(specMounts) != 1 || !mounted(t, specMounts[0].Source) {
					t.Fatalf("subPath %q: %v %+v", tc.sub, err, specMounts)
				}
				return
			}
			if !errors.Is(err, ErrSubPathEscapes) {
				t.Fatalf("subPath %q: error %v, want ErrSubPathEscapes", tc.sub, err)
			}
			if _, err := os.Stat("/x"); err == nil {
				t.Errorf("subPath %q created /x", tc.sub)
			}
		})
	}
	if mps, _ := mounts.Under(filepath.Join(f.m.PodDir("esc"), subPathsDirName)); len(mps) != 2 {
		t.Errorf("subPath mounts %v, want exactly the two allowed ones", mps)
	}
	if err := f.m.RemovePodDir("esc"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSetUpUnchanged is the cost of the refresh every resync makes
// for a pod whose ConfigMap (10 keys of 1 KiB) and Secret did not change.
func BenchmarkSetUpUnchanged(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (tmpfs)")
	}
	root := b.TempDir()
	b.Cleanup(func() {
		if err := mounts.UnmountAll(root); err != nil {
			b.Error(err)
		}
	})
	cms, secs := &objects[*api.ConfigMap]{}, &objects[*api.Secret]{}
	data := map[string]string{}
	for i := range 10 {
		data["key"+string(rune('a'+i))] = strings.Repeat("x", 1024)
	}
	cms.set("default", "cfg", &api.ConfigMap{Data: data})
	secs.set("default", "sec", &api.Secret{Data: map[string][]byte{"password": []byte("s3cret")}})
	m := New(Config{RootDir: root, ConfigMaps: cms, Secrets: secs, Logger: slog.New(slog.DiscardHandler)})
	pod := testPod("bench",
		&api.Volume{Name: "cfg", ConfigMap: &api.ConfigMapVolumeSource{Name: "cfg"}},
		&api.Volume{Name: "sec", Secret: &api.SecretVolumeSource{SecretName: "sec"}},
		&api.Volume{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{}},
	)
	ctx := context.Background()
	if err := m.SetUp(ctx, pod); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := m.SetUp(ctx, pod); err != nil {
			b.Fatal(err)
		}
	}
}
