package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/skiff-dev/skiff/kubelet/containerdtest"
)

// readArchive returns the files of a tar by name.
func readArchive(t *testing.T, data []byte) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = hdr
	}
}

func fileOf(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in archive: %v", name, err)
		}
		if hdr.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

func TestImagesAreDeterministicDockerArchives(t *testing.T) {
	tests := []struct {
		name      string
		build     func(io.Writer, string) error
		ref       string
		cmd       []string
		wantFiles map[string]byte // path in layer → tar type
	}{
		{
			name: "busybox", build: Busybox, ref: "busybox:latest", cmd: []string{"sh"},
			wantFiles: map[string]byte{"bin/busybox": tar.TypeReg, "bin/sh": tar.TypeSymlink, "usr/sbin/httpd": tar.TypeSymlink, "tmp/": tar.TypeDir, "etc/passwd": tar.TypeReg},
		},
		{
			name: "nginx", build: Nginx, ref: "nginx:latest", cmd: []string{"/usr/sbin/nginx", "-g", "daemon off;"},
			wantFiles: map[string]byte{
				"usr/sbin/nginx": tar.TypeReg, "lib64/ld-linux-x86-64.so.2": tar.TypeReg, "lib/x86_64-linux-gnu/libc.so.6": tar.TypeReg,
				"etc/nginx/nginx.conf": tar.TypeReg, "etc/nginx/mime.types": tar.TypeReg, "usr/share/nginx/html/index.html": tar.TypeReg,
				"var/lib/nginx/body/": tar.TypeDir, "var/log/nginx/": tar.TypeDir, "run/": tar.TypeDir, "tmp/": tar.TypeDir, "etc/group": tar.TypeReg,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a, b bytes.Buffer
			if err := tt.build(&a, tt.ref); err != nil {
				t.Fatal(err)
			}
			if err := tt.build(&b, tt.ref); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatal("two builds differ: output is not deterministic")
			}
			var manifest []manifestEntry
			if err := json.Unmarshal(fileOf(t, a.Bytes(), "manifest.json"), &manifest); err != nil {
				t.Fatal(err)
			}
			if len(manifest) != 1 || !reflect.DeepEqual(manifest[0].RepoTags, []string{tt.ref}) || len(manifest[0].Layers) != 1 {
				t.Fatalf("manifest = %+v", manifest)
			}
			var cfg configFile
			if err := json.Unmarshal(fileOf(t, a.Bytes(), manifest[0].Config), &cfg); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Config.Cmd, tt.cmd) {
				t.Errorf("Cmd = %q, want %q", cfg.Config.Cmd, tt.cmd)
			}
			layer := fileOf(t, a.Bytes(), manifest[0].Layers[0])
			files := readArchive(t, layer)
			for p, typ := range tt.wantFiles {
				hdr, ok := files[p]
				if !ok {
					t.Errorf("layer lacks %s", p)
					continue
				}
				if hdr.Typeflag != typ {
					t.Errorf("%s has type %c, want %c", p, hdr.Typeflag, typ)
				}
			}
		})
	}
}

func TestNginxIndexIsTheRealWelcomePage(t *testing.T) {
	var buf bytes.Buffer
	if err := Nginx(&buf, "nginx:latest"); err != nil {
		t.Fatal(err)
	}
	var manifest []manifestEntry
	if err := json.Unmarshal(fileOf(t, buf.Bytes(), "manifest.json"), &manifest); err != nil {
		t.Fatal(err)
	}
	layer := fileOf(t, buf.Bytes(), manifest[0].Layers[0])
	if index := fileOf(t, layer, "usr/share/nginx/html/index.html"); !bytes.Contains(index, []byte("Welcome to nginx!")) {
		t.Errorf("index.html = %q", index)
	}
}

func TestParseLdd(t *testing.T) {
	out := []byte(`	linux-vdso.so.1 (0x00007fb4bfed4000)
	libcrypt.so.1 => /lib/x86_64-linux-gnu/libcrypt.so.1 (0x00007fb4bfd33000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fb4bf41e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007fb4bfed6000)
`)
	want := []string{"/lib/x86_64-linux-gnu/libcrypt.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if got := parseLdd(out); !reflect.DeepEqual(got, want) {
		t.Errorf("parseLdd = %q, want %q", got, want)
	}
}

func TestBusyboxImportsIntoContainerd(t *testing.T) {
	d := containerdtest.Start(t)
	c := d.Client(t, "imagebuild-test")
	var buf bytes.Buffer
	if err := Busybox(&buf, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	imgs, err := c.Import(ctx, &buf)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(imgs) != 1 || imgs[0].Name != "docker.io/library/busybox:latest" {
		t.Fatalf("imported %+v, want docker.io/library/busybox:latest", imgs)
	}
	img := containerd.NewImage(c, imgs[0])
	if err := img.Unpack(ctx, ""); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	cfg, err := img.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Config.Cmd, []string{"sh"}) {
		t.Errorf("Cmd = %q", cfg.Config.Cmd)
	}
}
