package cmd

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// writeTar archives the local file or directory src under name, as
// "tar cf - -C DIR name" would: name, name/a, name/a/b... With name "."
// only the contents are archived, so the destination directory keeps its
// own mode. src itself is followed when it is a symlink (the user named
// it); symlinks inside it are archived as symlinks.
func writeTar(w io.Writer, src, name string, warn io.Writer) error {
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		member := path.Join(name, filepath.ToSlash(rel))
		if member == "." {
			return nil
		}
		return addToTar(tw, p, member, warn)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// addToTar writes one file, directory or symlink; what tar cannot hold
// (a socket) is skipped with a warning.
func addToTar(tw *tar.Writer, p, member string, warn io.Writer) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	var link string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		fmt.Fprintf(warn, "warning: skipping %q: %v\n", p, err)
		return nil
	}
	hdr.Name = member
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	// The size in the header is what goes: a file growing meanwhile (a
	// log) is cut there, a shrinking one fails the copy.
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	return nil
}

// untarrer writes the members of an archive made by "tar cf - -C DIR top"
// to target: top is target itself, top/a is target/a. It never writes
// outside target: other members, and members climbing out with "..", are
// skipped with a warning, and so are symlinks that would resolve outside
// it (checked against the real directory they are made in, so a chain of
// symlinks cannot climb out either).
type untarrer struct {
	top, target string
	warn        io.Writer
	stripped    bool      // the leading "/" warning was printed
	dirs        []dirMode // directories made, whose modes are set last
}

type dirMode struct {
	path string
	mode fs.FileMode
}

// untar extracts the archive r into target. Each file is written to a
// temporary file beside its destination and renamed into place once
// complete, so a failed copy leaves no truncated file; directory modes are
// set at the end, so a read-only directory still receives its contents.
func untar(r io.Reader, top, target string, warn io.Writer) error {
	abs, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	u := &untarrer{top: top, target: abs, warn: warn}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the archive: %w", err)
		}
		if err := u.extract(tr, hdr); err != nil {
			return err
		}
	}
	for i := len(u.dirs) - 1; i >= 0; i-- { // deepest first
		if err := os.Chmod(u.dirs[i].path, u.dirs[i].mode); err != nil {
			return err
		}
	}
	return nil
}

func (u *untarrer) extract(tr *tar.Reader, hdr *tar.Header) error {
	p, top, ok := u.destination(hdr.Name)
	if !ok || !u.placeInside(p) {
		fmt.Fprintf(u.warn, "warning: file %q is outside target destination, skipping\n", hdr.Name)
		return nil
	}
	mode := fs.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.mkdir(p, mode)
	case tar.TypeReg:
		return u.writeFile(p, tr, mode)
	case tar.TypeSymlink:
		return u.symlink(p, top, hdr.Linkname)
	case tar.TypeLink:
		return u.hardlink(p, hdr.Linkname)
	default:
		fmt.Fprintf(u.warn, "warning: skipping %q: not a regular file, directory or link\n", p)
		return nil
	}
}

// destination maps a member name to its local path; top reports the
// member is top itself. A leading "/" is stripped, as tar does.
func (u *untarrer) destination(name string) (p string, top, ok bool) {
	if strings.HasPrefix(name, "/") {
		if !u.stripped {
			fmt.Fprintln(u.warn, "tar: removing leading '/' from member names")
			u.stripped = true
		}
		name = strings.TrimLeft(name, "/")
	}
	rel, ok := memberRel(name, u.top)
	if !ok {
		return "", false, false
	}
	return filepath.Join(u.target, filepath.FromSlash(rel)), rel == "", true
}

// placeInside reports whether p's directory, once made, lies inside
// u.target: the deepest part of it that exists resolves there, symlinks
// followed, and no link on the way dangles. Every member passes it before
// anything is written, so no chain of links, however the archive built it,
// leads a write out of the destination.
func (u *untarrer) placeInside(p string) bool {
	if p == u.target {
		return true // the destination itself, where the user asked
	}
	for dir := filepath.Dir(p); ; {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			return u.underRoot(real)
		}
		if fi, lerr := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) || (lerr == nil && fi.Mode()&fs.ModeSymlink != 0) {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}

// memberRel is name's path below top, "" for top itself; ok is false when
// name, cleaned, is neither top nor under it ("top/../x" is not).
func memberRel(name, top string) (rel string, ok bool) {
	name = path.Clean(name)
	if top == "." {
		switch {
		case name == ".":
			return "", true
		case name == ".." || strings.HasPrefix(name, "../"):
			return "", false
		}
		return name, true
	}
	if name == top {
		return "", true
	}
	if rel, ok := strings.CutPrefix(name, top+"/"); ok {
		return rel, true
	}
	return "", false
}

func (u *untarrer) mkdir(p string, mode fs.FileMode) error {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return nil // an existing directory keeps its mode, as cp leaves it
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	u.dirs = append(u.dirs, dirMode{p, mode})
	return nil
}

func (u *untarrer) writeFile(p string, r io.Reader, mode fs.FileMode) error {
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return fmt.Errorf("cannot overwrite directory %q with non-directory", p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".ctl-cp-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// symlink makes a link whose target stays inside u.target, skipping any
// other as kubectl skips symlinks. The target is resolved from the real
// directory the link is made in (a directory reached through an earlier
// link is not where its path says) and stored cleaned, so it climbs with
// ".." only at its start and only descends after: a later link through it
// stays inside too.
func (u *untarrer) symlink(p string, top bool, target string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if top || !u.inside(filepath.Dir(p), target) {
		fmt.Fprintf(u.warn, "warning: skipping symlink: %q -> %q\n", p, target)
		return nil
	}
	if err := removeExisting(p); err != nil {
		return err
	}
	return os.Symlink(path.Clean(target), p)
}

// inside reports whether target, relative to directory dir, resolves
// inside u.target.
func (u *untarrer) inside(dir, target string) bool {
	if target == "" || path.IsAbs(target) {
		return false
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	return u.underRoot(filepath.Join(realDir, filepath.FromSlash(path.Clean(target))))
}

// underRoot reports whether real, a path with no symlinks left in it, is
// u.target (its real path) or below it. The destination is made by the
// archive's top, its first member; until then nothing is under it.
func (u *untarrer) underRoot(real string) bool {
	root, err := filepath.EvalSymlinks(u.target)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(root, real)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// hardlink links p to an earlier member, which must be inside the
// destination too.
func (u *untarrer) hardlink(p, member string) error {
	old, _, ok := u.destination(member)
	if !ok || !u.placeInside(old) {
		fmt.Fprintf(u.warn, "warning: skipping hard link: %q -> %q is outside target destination\n", p, member)
		return nil
	}
	// Only files: a hard link to a symlink is the symlink itself, moved to
	// where its relative target may point out of the destination.
	if fi, err := os.Lstat(old); err != nil || !fi.Mode().IsRegular() {
		fmt.Fprintf(u.warn, "warning: skipping hard link: %q -> %q is not a regular file\n", p, member)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := removeExisting(p); err != nil {
		return err
	}
	return os.Link(old, p)
}

// removeExisting removes what is at p, as tar replaces a file it
// extracts; a directory with contents stays and fails the copy.
func removeExisting(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
