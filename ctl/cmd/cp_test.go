package cmd

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
)

// readTree describes every entry under root by its path below it ("." for
// root): "dir 0755", "file 0644 CONTENT" or "link -> TARGET".
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "link -> " + link
		case fi.IsDir():
			got[rel] = fmt.Sprintf("dir %04o", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = fmt.Sprintf("file %04o %s", fi.Mode().Perm(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", root, err)
	}
	return got
}

// makeTree creates the entries readTree describes under root; directory modes
// are set last, so a read-only one still gets its contents.
func makeTree(t *testing.T, root string, entries map[string]string) {
	t.Helper()
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var dirs []string
	for _, n := range names {
		p := filepath.Join(root, n)
		var mode fs.FileMode
		var err error
		switch kind, rest, _ := strings.Cut(entries[n], " "); kind {
		case "dir":
			_, err = fmt.Sscanf(rest, "%o", &mode)
			if err == nil {
				err = os.MkdirAll(p, 0o755)
			}
			dirs = append(dirs, n)
		case "file":
			m, content, _ := strings.Cut(rest, " ")
			_, err = fmt.Sscanf(m, "%o", &mode)
			if err == nil {
				err = os.WriteFile(p, []byte(content), 0o600)
			}
			if err == nil {
				err = os.Chmod(p, mode)
			}
		case "link":
			err = os.Symlink(strings.TrimPrefix(rest, "-> "), p)
		default:
			t.Fatalf("bad tree entry %q: %q", n, entries[n])
		}
		if err != nil {
			t.Fatalf("make %s: %v", p, err)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		var mode fs.FileMode
		_, _ = fmt.Sscanf(strings.TrimPrefix(entries[dirs[i]], "dir "), "%o", &mode)
		if err := os.Chmod(filepath.Join(root, dirs[i]), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// writableTempDir is a t.TempDir whose read-only directories are made writable
// again before it is removed.
func writableTempDir(t *testing.T) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return dir
}

// member is one entry of an archive a test builds.
type member struct {
	name string
	typ  byte
	mode int64
	body string // the content, or a link's target
	size int64  // the size the header claims, when not len(body)
}

func tarFile(name, body string) member {
	return member{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}

func tarDir(name string) member { return member{name: name, typ: tar.TypeDir, mode: 0o755} }

func tarSymlink(name, target string) member {
	return member{name: name, typ: tar.TypeSymlink, mode: 0o777, body: target}
}

// archive writes members as a tar stream; a member claiming more than its
// body leaves the stream truncated there.
func archive(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: m.mode}
		switch m.typ {
		case tar.TypeReg:
			hdr.Size = int64(len(m.body))
			if m.size != 0 {
				hdr.Size = m.size
			}
		case tar.TypeSymlink, tar.TypeLink:
			hdr.Linkname = m.body
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if m.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, m.body); err != nil {
				t.Fatal(err)
			}
			if m.size != 0 {
				_ = tw.Flush() // ignored: the body is short on purpose
				return buf.Bytes()
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUntarWritesOnlyInsideTheDestination protects the local side of
// "ctl cp POD:SRC DEST" against whatever the container's tar sends:
// members and symlinks that would land outside DEST are skipped with
// kubectl's warnings, modes are kept, directories made read-only last.
func TestUntarWritesOnlyInsideTheDestination(t *testing.T) {
	tests := []struct {
		name     string
		top      string
		members  []member
		want     map[string]string // the tree at DIR/out; nil: nothing there
		warnings []string
	}{{
		name: "a directory, with each mode kept",
		top:  "site",
		members: []member{tarDir("site/"), {name: "site/run.sh", typ: tar.TypeReg, mode: 0o755, body: "echo"},
			{name: "site/secret", typ: tar.TypeReg, mode: 0o600, body: "s"}, {name: "site/ro/", typ: tar.TypeDir, mode: 0o555},
			tarFile("site/ro/f", "f"), {name: "site/private/", typ: tar.TypeDir, mode: 0o700}, tarFile("site/deep/er/f", "made parents")},
		want: map[string]string{".": "dir 0755", "run.sh": "file 0755 echo", "secret": "file 0600 s", "ro": "dir 0555",
			"ro/f": "file 0644 f", "private": "dir 0700", "deep": "dir 0755", "deep/er": "dir 0755", "deep/er/f": "file 0644 made parents"},
	}, {
		name:    "a single file becomes the destination",
		top:     "notes.txt",
		members: []member{{name: "notes.txt", typ: tar.TypeReg, mode: 0o640, body: "hello"}},
		want:    map[string]string{".": "file 0640 hello"},
	}, {
		name:    "the contents of the remote directory itself (top .)",
		top:     ".",
		members: []member{tarDir("./"), tarFile("./a", "a"), tarFile("b", "b"), tarFile("../escape", "no")},
		want:    map[string]string{".": "dir 0755", "a": "file 0644 a", "b": "file 0644 b"},
		warnings: []string{
			`warning: file "../escape" is outside target destination, skipping`,
		},
	}, {
		name: "members outside the top or climbing out are skipped",
		top:  "site",
		members: []member{tarDir("site/"), tarFile("site/../escape", "no"), tarFile("../escape", "no"), tarFile("other/f", "no"),
			tarFile("site/a/../../escape", "no"), tarFile("site/a/../ok", "yes")},
		want: map[string]string{".": "dir 0755", "ok": "file 0644 yes"},
		warnings: []string{
			`warning: file "site/../escape" is outside target destination, skipping`,
			`warning: file "../escape" is outside target destination, skipping`,
			`warning: file "other/f" is outside target destination, skipping`,
			`warning: file "site/a/../../escape" is outside target destination, skipping`,
		},
	}, {
		name:     "a leading slash is stripped once, with tar's message",
		top:      "site",
		members:  []member{tarDir("/site/"), tarFile("/site/f", "f"), tarFile("//etc/passwd", "no")},
		want:     map[string]string{".": "dir 0755", "f": "file 0644 f"},
		warnings: []string{"tar: removing leading '/' from member names", `warning: file "//etc/passwd" is outside target destination, skipping`},
	}, {
		name: "symlinks pointing outside are skipped, those inside kept",
		top:  "site",
		members: []member{tarDir("site/"), tarFile("site/f", "f"), tarSymlink("site/in", "f"), tarDir("site/sub/"), tarSymlink("site/sub/up", "../f"),
			tarSymlink("site/sub/self", "./x/../../sub"), tarSymlink("site/abs", "/etc/passwd"), tarSymlink("site/out", "../escape"),
			tarSymlink("site/sub/far", "../../escape"), tarSymlink("site/empty", "")},
		want: map[string]string{".": "dir 0755", "f": "file 0644 f", "in": "link -> f", "sub": "dir 0755",
			"sub/up": "link -> ../f", "sub/self": "link -> ../sub"},
		warnings: []string{
			`warning: skipping symlink: "DIR/out/abs" -> "/etc/passwd"`,
			`warning: skipping symlink: "DIR/out/out" -> "../escape"`,
			`warning: skipping symlink: "DIR/out/sub/far" -> "../../escape"`,
			`warning: skipping symlink: "DIR/out/empty" -> ""`,
		},
	}, {
		// d/up is a symlink to d's parent, the top: inside. A link made
		// under d/up/x sits in top/x, not in top/d/up/x where its path
		// says, so "../../escape" from there leaves the destination,
		// though a check of the path alone finds top/d/escape.
		name: "a chain of symlinks cannot climb out",
		top:  "site",
		members: []member{tarDir("site/"), tarDir("site/d/"), tarSymlink("site/d/up", ".."), tarSymlink("site/d/up/x/l", "../../escape"),
			tarFile("site/d/up/x/l/pwned", "inside")},
		want: map[string]string{".": "dir 0755", "d": "dir 0755", "d/up": "link -> ..", "x": "dir 0755", "x/l": "dir 0755",
			"x/l/pwned": "file 0644 inside"},
		warnings: []string{`warning: skipping symlink: "DIR/out/d/up/x/l" -> "../../escape"`},
	}, {
		name: "hard links inside are made, those outside skipped",
		top:  "site",
		members: []member{tarDir("site/"), tarFile("site/f", "data"), {name: "site/h", typ: tar.TypeLink, body: "site/f"},
			{name: "site/bad", typ: tar.TypeLink, body: "etc/passwd"}},
		want:     map[string]string{".": "dir 0755", "f": "file 0644 data", "h": "file 0644 data"},
		warnings: []string{`warning: skipping hard link: "DIR/out/bad" -> "etc/passwd" is outside target destination`},
	}, {
		// a/b/l -> ../.. is the destination itself, seen from a/b; a hard
		// link to it is the same symlink at a/m, where ../.. is outside,
		// and a/m/escape would be written through it.
		name: "a hard link cannot move a symlink out",
		top:  "site",
		members: []member{tarDir("site/"), tarDir("site/a/"), tarDir("site/a/b/"), tarSymlink("site/a/b/l", "../.."),
			{name: "site/a/m", typ: tar.TypeLink, body: "site/a/b/l"}, tarFile("site/a/m/escape", "inside")},
		want: map[string]string{".": "dir 0755", "a": "dir 0755", "a/b": "dir 0755", "a/b/l": "link -> ../..",
			"a/m": "dir 0755", "a/m/escape": "file 0644 inside"},
		warnings: []string{`warning: skipping hard link: "DIR/out/a/m" -> "site/a/b/l" is not a regular file`},
	}, {
		name:     "a top that is a symlink is skipped",
		top:      "localtime",
		members:  []member{tarSymlink("localtime", "/usr/share/zoneinfo/UTC")},
		warnings: []string{`warning: skipping symlink: "DIR/out" -> "/usr/share/zoneinfo/UTC"`},
	}, {
		name:     "devices and fifos are skipped",
		top:      "site",
		members:  []member{tarDir("site/"), {name: "site/fifo", typ: tar.TypeFifo, mode: 0o644}},
		want:     map[string]string{".": "dir 0755"},
		warnings: []string{`warning: skipping "DIR/out/fifo": not a regular file, directory or link`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := writableTempDir(t)
			out := filepath.Join(base, "out")
			var warn bytes.Buffer
			if err := untar(bytes.NewReader(archive(t, tt.members...)), tt.top, out, &warn); err != nil {
				t.Fatalf("untar: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(base, "escape")); err == nil {
				t.Error("a member escaped to DIR/escape")
			}
			var got map[string]string
			if _, err := os.Lstat(out); err == nil {
				got = readTree(t, out)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tree:\n got %v\nwant %v", got, tt.want)
			}
			var want string
			for _, w := range tt.warnings {
				want += strings.ReplaceAll(w, "DIR", base) + "\n"
			}
			if warn.String() != want {
				t.Errorf("warnings:\n got %q\nwant %q", warn.String(), want)
			}
		})
	}
}

// TestUntarFailureLeavesNoTruncatedFile protects "no partial local
// write": a stream cut in the middle of a file leaves the files before it
// whole, and the file it cut neither created nor overwritten.
func TestUntarFailureLeavesNoTruncatedFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	makeTree(t, out, map[string]string{".": "dir 0755", "b": "file 0644 old"})
	cut := archive(t, tarDir("site/"), tarFile("site/a", "complete"), member{name: "site/b", typ: tar.TypeReg, mode: 0o644, body: "half", size: 100},
		tarFile("site/c", "never"))
	err := untar(bytes.NewReader(cut), "site", out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("untar of a cut stream: %v, want unexpected EOF", err)
	}
	want := map[string]string{".": "dir 0755", "a": "file 0644 complete", "b": "file 0644 old"}
	if got := readTree(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("after a failed untar (no temporary file may stay):\n got %v\nwant %v", got, want)
	}
}

func TestUntarReplacesFilesButNotDirectories(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	makeTree(t, out, map[string]string{".": "dir 0700", "f": "file 0600 old", "d": "dir 0755", "d/keep": "file 0644 k"})
	if err := untar(bytes.NewReader(archive(t, tarDir("site/"), tarFile("site/f", "new"))), "site", out, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{".": "dir 0700", "f": "file 0644 new", "d": "dir 0755", "d/keep": "file 0644 k"}
	if got := readTree(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("an existing directory keeps its mode, a file is replaced:\n got %v\nwant %v", got, want)
	}
	err := untar(bytes.NewReader(archive(t, tarDir("site/"), tarFile("site/d", "x"))), "site", out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite directory") {
		t.Errorf("a file over a directory: %v", err)
	}
}

// TestWriteTarThenUntar protects the archive sent into a container: names
// under the destination's name ("." for the contents only, without an
// entry for the directory itself), modes, inner symlinks as symlinks, a
// source that is itself a symlink followed; untar gives the tree back.
func TestWriteTarThenUntar(t *testing.T) {
	src := map[string]string{".": "dir 0750", "run.sh": "file 0755 #!/bin/sh", "sub": "dir 0700", "sub/f": "file 0600 f",
		"link": "link -> run.sh", "empty": "dir 0755"}
	tests := []struct {
		name        string
		archiveName string
		members     []string
	}{
		{"under a new name", "dest", []string{"dest/ 750", "dest/empty/ 755", "dest/link -> run.sh", "dest/run.sh 755", "dest/sub/ 700", "dest/sub/f 600"}},
		{"the contents only", ".", []string{"empty/ 755", "link -> run.sh", "run.sh 755", "sub/ 700", "sub/f 600"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			makeTree(t, filepath.Join(base, "src"), src)
			if err := os.Symlink("src", filepath.Join(base, "alias")); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := writeTar(&buf, filepath.Join(base, "alias"), tt.archiveName, io.Discard); err != nil {
				t.Fatal(err)
			}
			var got []string
			tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if hdr.Typeflag == tar.TypeSymlink {
					got = append(got, hdr.Name+" -> "+hdr.Linkname)
				} else {
					got = append(got, fmt.Sprintf("%s %o", hdr.Name, hdr.Mode))
				}
			}
			if !reflect.DeepEqual(got, tt.members) {
				t.Errorf("members:\n got %q\nwant %q", got, tt.members)
			}
			out := filepath.Join(base, "out")
			if tt.archiveName == "." {
				makeTree(t, out, map[string]string{".": "dir 0750"})
			}
			if err := untar(&buf, tt.archiveName, out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := readTree(t, out); !reflect.DeepEqual(got, src) {
				t.Errorf("round trip:\n got %v\nwant %v", got, src)
			}
		})
	}
}

func TestMemberRel(t *testing.T) {
	tests := []struct {
		name, top, rel string
		ok             bool
	}{
		{"site", "site", "", true},
		{"site/", "site", "", true},
		{"site/a/b", "site", "a/b", true},
		{"./site/a", "site", "a", true},
		{"site/a/../b", "site", "b", true},
		{"site/../x", "site", "", false},
		{"sitex/a", "site", "", false},
		{"other", "site", "", false},
		{"", "site", "", false},
		{".", ".", "", true},
		{"./a", ".", "a", true},
		{"../a", ".", "", false},
		{"a/../..", ".", "", false},
	}
	for _, tt := range tests {
		if rel, ok := memberRel(tt.name, tt.top); rel != tt.rel || ok != tt.ok {
			t.Errorf("memberRel(%q, %q) = %q, %v; want %q, %v", tt.name, tt.top, rel, ok, tt.rel, tt.ok)
		}
	}
}

func TestParseFileSpec(t *testing.T) {
	tests := []struct {
		arg  string
		want fileSpec
		err  bool
	}{
		{arg: "web:/tmp/x", want: fileSpec{pod: "web", path: "/tmp/x"}},
		{arg: "prod/web:/tmp/x", want: fileSpec{namespace: "prod", pod: "web", path: "/tmp/x"}},
		{arg: "web:", want: fileSpec{pod: "web"}},
		{arg: "web:rel/x", want: fileSpec{pod: "web", path: "rel/x"}},
		{arg: "/tmp/a:b", want: fileSpec{path: "/tmp/a:b"}},
		{arg: "./a:b", want: fileSpec{path: "./a:b"}},
		{arg: "local/file", want: fileSpec{path: "local/file"}},
		{arg: ":/x", err: true},
		{arg: "a/b/c:/x", err: true},
		{arg: "/web:/x", want: fileSpec{path: "/web:/x"}},
		{arg: "prod/:/x", err: true},
	}
	for _, tt := range tests {
		got, err := parseFileSpec(tt.arg)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseFileSpec(%q) = %+v, %v; want %+v, error %v", tt.arg, got, err, tt.want, tt.err)
		}
	}
}

func TestSplitRemote(t *testing.T) {
	tests := []struct{ path, dir, name string }{
		{"/tmp/x", "/tmp", "x"},
		{"/tmp/x/", "/tmp", "x"},
		{"/x", "/", "x"},
		{"/", "/", "."},
		{"x", ".", "x"},
		{".", ".", "."},
		{"../..", "../..", "."},
		{"/a/b/../c", "/a", "c"},
	}
	for _, tt := range tests {
		if dir, name := splitRemote(tt.path); dir != tt.dir || name != tt.name {
			t.Errorf("splitRemote(%q) = %q, %q; want %q, %q", tt.path, dir, name, tt.dir, tt.name)
		}
	}
}

// startCpKubelet is a fake kubelet whose tar and test run for real; the
// test is skipped on a host with neither busybox nor tar.
func startCpKubelet(t *testing.T, e *env) *fakeKubelet {
	t.Helper()
	if _, err := exec.LookPath("busybox"); err != nil {
		if _, err := exec.LookPath("tar"); err != nil {
			t.Skip("neither busybox nor tar to stand for the container's tar")
		}
	}
	k := startFakeKubelet(t, e)
	if err := os.Mkdir(filepath.Join(k.root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	return k
}

// commands is every command the kubelet ran, in order.
func (k *fakeKubelet) commands() [][]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out [][]string
	for _, s := range k.started {
		out = append(out, s.GetCommand())
	}
	return out
}

// lastStart is the last exec the kubelet saw.
func (k *fakeKubelet) lastStart() *api.ExecStart {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.started[len(k.started)-1]
}

// TestCpToAndFromPod protects both directions through the apiserver to a
// kubelet running a real tar: a directory and a file each way, into an
// existing directory or under a new name, -c, -n and NAMESPACE/POD, and
// the commands kubectl runs.
func TestCpToAndFromPod(t *testing.T) {
	e := newEnv(t)
	k := startCpKubelet(t, e)
	local := t.TempDir()
	site := map[string]string{".": "dir 0750", "index.html": "file 0644 <h1>hi</h1>", "bin": "dir 0755",
		"bin/run.sh": "file 0755 #!/bin/sh", "link": "link -> index.html", "empty": "dir 0700"}
	makeTree(t, filepath.Join(local, "site"), site)
	makeTree(t, local, map[string]string{"notes.txt": "file 0640 notes"})

	e.ok("cp", filepath.Join(local, "site"), "web:/tmp")
	if got := readTree(t, filepath.Join(k.root, "tmp", "site")); !reflect.DeepEqual(got, site) {
		t.Errorf("cp DIR web:/tmp (an existing directory) made /tmp/site:\n got %v\nwant %v", got, site)
	}
	want := [][]string{{"test", "-d", "/tmp"}, {"tar", "xmf", "-", "-C", "/tmp"}}
	if got := k.commands(); !reflect.DeepEqual(got, want) {
		t.Errorf("cp into the pod ran %q, want %q", got, want)
	}

	e.ok("cp", filepath.Join(local, "notes.txt"), "web:/tmp/renamed.txt", "-c", "sidecar")
	if got := readTree(t, filepath.Join(k.root, "tmp", "renamed.txt")); got["."] != "file 0640 notes" {
		t.Errorf("cp FILE web:/tmp/renamed.txt: %v", got)
	}
	if s := k.lastStart(); s.GetContainer() != "sidecar" || !s.GetStdin() {
		t.Errorf("cp -c sidecar sent %v", s)
	}

	e.ok("cp", "--no-preserve", filepath.Join(local, "notes.txt"), "web:/tmp/np.txt")
	if got, want := k.lastStart().GetCommand(), []string{"tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-", "-C", "/tmp"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cp --no-preserve ran %q, want %q", got, want)
	}

	out := t.TempDir()
	r := e.run("", "cp", "web:/tmp/site", filepath.Join(out, "new"))
	if r.code != 0 || strings.Contains(r.err, "warning") {
		t.Fatalf("cp web:/tmp/site NEW: %+v", r)
	}
	if got := readTree(t, filepath.Join(out, "new")); !reflect.DeepEqual(got, site) {
		t.Errorf("cp web:/tmp/site NEW:\n got %v\nwant %v", got, site)
	}
	if got, want := k.lastStart().GetCommand(), []string{"tar", "cf", "-", "-C", "/tmp", "site"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cp from the pod ran %q, want %q", got, want)
	}
	e.ok("cp", "default/web:/tmp/site", out)
	if got := readTree(t, filepath.Join(out, "site")); !reflect.DeepEqual(got, site) {
		t.Errorf("cp default/web:/tmp/site EXISTING-DIR:\n got %v\nwant %v", got, site)
	}
	e.ok("-n", "default", "cp", "web:/tmp/renamed.txt", out)
	if got := readTree(t, filepath.Join(out, "renamed.txt")); got["."] != "file 0640 notes" {
		t.Errorf("cp web:/tmp/renamed.txt EXISTING-DIR: %v", got)
	}
}

// TestCpFromPodSkipsSymlinksOutside runs the container's own tar on a
// directory holding symlinks out of it: they are skipped with kubectl's
// warning and the rest is copied.
func TestCpFromPodSkipsSymlinksOutside(t *testing.T) {
	e := newEnv(t)
	k := startCpKubelet(t, e)
	makeTree(t, filepath.Join(k.root, "tmp", "evil"), map[string]string{".": "dir 0755", "f": "file 0644 f",
		"etc": "link -> /etc", "up": "link -> ../../..", "ok": "link -> f"})
	out := filepath.Join(t.TempDir(), "evil")
	r := e.run("", "cp", "web:/tmp/evil", out)
	if r.code != 0 {
		t.Fatalf("cp: %+v", r)
	}
	for _, w := range []string{
		fmt.Sprintf("warning: skipping symlink: %q -> %q\n", filepath.Join(out, "etc"), "/etc"),
		fmt.Sprintf("warning: skipping symlink: %q -> %q\n", filepath.Join(out, "up"), "../../.."),
	} {
		if !strings.Contains(r.err, w) {
			t.Errorf("stderr %q lacks %q", r.err, w)
		}
	}
	want := map[string]string{".": "dir 0755", "f": "file 0644 f", "ok": "link -> f"}
	if got := readTree(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("copied:\n got %v\nwant %v", got, want)
	}
}

// TestCpErrors protects what a user reads when a copy cannot be done, and
// that nothing is written locally then.
func TestCpErrors(t *testing.T) {
	e := newEnv(t)
	startCpKubelet(t, e)
	local := t.TempDir()
	makeTree(t, local, map[string]string{"notes.txt": "file 0644 n"})
	missing := filepath.Join(local, "missing")
	out := filepath.Join(local, "out")
	tests := []struct {
		name string
		args []string
		want []string // each in stderr
	}{
		{"a remote path that does not exist", []string{"cp", "web:/tmp/nope", out},
			[]string{`error: copy from web:/tmp/nope: "tar cf - -C /tmp nope" in container nginx exited with code `, "nope", "No such file or directory"}},
		{"a remote directory that does not exist", []string{"cp", filepath.Join(local, "notes.txt"), "web:/nodir/x"},
			[]string{`error: copy to web:/nodir/x: "tar xmf - -C /nodir" in container nginx exited with code `, "/nodir"}},
		{"a local source that does not exist", []string{"cp", missing, "web:/tmp"},
			[]string{"error: stat " + missing + ": no such file or directory\n"}},
		{"both remote", []string{"cp", "web:/a", "web:/b"}, []string{"error: one of src or dest must be a local file specification\n"}},
		{"neither remote", []string{"cp", "a", "b"}, []string{"error: one of src or dest must be a remote file specification\n"}},
		{"an empty remote path", []string{"cp", "web:", out}, []string{"error: filepath can not be empty\n"}},
		{"a malformed file spec", []string{"cp", "a/b/c:/x", out}, []string{"error: filespec must match the canonical format: [[namespace/]pod:]file/path\n"}},
		{"one argument", []string{"cp", "web:/tmp"}, []string{"error: source and destination are required\nSee 'ctl cp --help' for usage.\n"}},
		{"an unknown container", []string{"cp", "web:/tmp", out, "-c", "nope"}, []string{"error: container nope is not valid for pod web\n"}},
		{"a pod in another namespace", []string{"cp", "other/web:/tmp", out}, []string{"Error from server (NotFound): pods \"web\" not found\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.fails(tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("stderr %q lacks %q", got, w)
				}
			}
			if _, err := os.Lstat(out); err == nil {
				t.Errorf("a failed copy wrote %s", out)
			}
		})
	}
}
