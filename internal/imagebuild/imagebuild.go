// Package imagebuild builds small OCI-compatible container images as
// docker-archive tarballs (manifest.json, a config JSON and one layer.tar)
// from files already installed on the host by Debian packages, so tests and
// air-gapped nodes have busybox and nginx images without a registry.
//
// The output is deterministic: the same host files give the same bytes and
// therefore the same image digest. It must never download anything.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// epoch is the modification time of every entry, for reproducible output.
var epoch = time.Unix(0, 0).UTC()

// DefaultPath is the PATH every image's config sets.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Entry is one file, directory or symlink of an image's root filesystem.
type Entry struct {
	Path     string // absolute path inside the image
	Mode     int64  // permission bits
	Dir      bool
	Linkname string // set for a symlink
	Data     []byte // file content
}

// Image is an image to write: its filesystem (one layer) and its config.
type Image struct {
	Ref        string // repository:tag written to RepoTags, e.g. "busybox:latest"
	Entries    []Entry
	Cmd        []string
	Entrypoint []string
	Env        []string
	WorkingDir string
	// ExposedPorts are "80/tcp" style ports.
	ExposedPorts []string
}

// Dir adds a directory entry.
func (img *Image) Dir(p string, mode int64) {
	img.Entries = append(img.Entries, Entry{Path: p, Mode: mode, Dir: true})
}

// File adds a regular file.
func (img *Image) File(p string, mode int64, data []byte) {
	img.Entries = append(img.Entries, Entry{Path: p, Mode: mode, Data: data})
}

// Symlink adds a symbolic link p → target.
func (img *Image) Symlink(p, target string) {
	img.Entries = append(img.Entries, Entry{Path: p, Mode: 0o777, Linkname: target})
}

// HostFile copies a host file into the image at p, following symlinks so
// the image holds the real content.
func (img *Image) HostFile(p, hostPath string) error {
	st, err := os.Stat(hostPath)
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Ref, err)
	}
	data, err := os.ReadFile(hostPath)
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Ref, err)
	}
	img.File(p, int64(st.Mode().Perm()), data)
	return nil
}

// layer writes the layer tar: parents before children, sorted, with
// implicit parent directories added, and a fixed owner and time.
func (img *Image) layer() ([]byte, error) {
	byPath := map[string]Entry{}
	for _, e := range img.Entries {
		p := path.Clean("/" + e.Path)
		e.Path = p
		if old, ok := byPath[p]; ok && !(old.Dir && e.Dir) {
			return nil, fmt.Errorf("image %s: %s added twice", img.Ref, p)
		}
		byPath[p] = e
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = Entry{Path: d, Mode: 0o755, Dir: true}
			}
		}
	}
	delete(byPath, "/")
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := byPath[p]
		hdr := &tar.Header{
			Name: strings.TrimPrefix(p, "/"), Mode: e.Mode, ModTime: epoch,
			Uname: "root", Gname: "root", Format: tar.FormatPAX,
		}
		switch {
		case e.Dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		case e.Linkname != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Linkname
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer %s: %w", p, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				return nil, fmt.Errorf("layer %s: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type configFile struct {
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Created      time.Time       `json:"created"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []history       `json:"history"`
}

type containerConfig struct {
	Cmd          []string            `json:"Cmd,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}

type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteTo writes the image as a docker-archive tarball, the format
// `docker save` writes and containerd's import reads.
func (img *Image) WriteTo(w io.Writer) (int64, error) {
	layer, err := img.layer()
	if err != nil {
		return 0, err
	}
	sum := sha256.Sum256(layer)
	diffID := hex.EncodeToString(sum[:])
	cfg := configFile{
		Architecture: runtime.GOARCH, OS: "linux", Created: epoch,
		Config:  containerConfig{Cmd: img.Cmd, Entrypoint: img.Entrypoint, Env: img.Env, WorkingDir: img.WorkingDir},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{"sha256:" + diffID}},
		History: []history{{Created: epoch, CreatedBy: "skiff imagebuild " + img.Ref}},
	}
	if len(img.ExposedPorts) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range img.ExposedPorts {
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return 0, err
	}
	cfgSum := sha256.Sum256(cfgJSON)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	layerName := diffID + "/layer.tar"
	manifest, err := json.Marshal([]manifestEntry{{Config: cfgName, RepoTags: []string{img.Ref}, Layers: []string{layerName}}})
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)
	files := []struct {
		name string
		data []byte
	}{{cfgName, cfgJSON}, {layerName, layer}, {"manifest.json", manifest}}
	if err := tw.WriteHeader(&tar.Header{Name: diffID + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return cw.n, err
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return cw.n, fmt.Errorf("write image %s: %w", img.Ref, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return cw.n, fmt.Errorf("write image %s: %w", img.Ref, err)
		}
	}
	if err := tw.Close(); err != nil {
		return cw.n, fmt.Errorf("write image %s: %w", img.Ref, err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
