package volumes

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/mounts"
)

// ErrSubPathEscapes is a subPath that leaves its volume, by '..', an
// absolute path or a symlink pointing outside.
var ErrSubPathEscapes = errors.New("subPath escapes its volume")

// beneath resolves paths like a chroot would not: every step, symlinks
// included, must stay below the directory it starts from (openat2's
// RESOLVE_BENEATH); /proc magic links are never followed.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// checkSubPath refuses subPaths that name something outside the volume
// before any file is touched.
func checkSubPath(sub string) error {
	if path.IsAbs(sub) {
		return fmt.Errorf("subPath %q: must be a relative path: %w", sub, ErrSubPathEscapes)
	}
	for _, elem := range strings.Split(sub, "/") {
		if elem == ".." {
			return fmt.Errorf("subPath %q: must not contain '..': %w", sub, ErrSubPathEscapes)
		}
	}
	return nil
}

// bindSubPath bind-mounts volume/sub on target and returns target, the
// source the container spec names. It opens sub below the volume with
// RESOLVE_BENEATH and mounts the opened file through /proc/self/fd, as
// Kubernetes does: a symlink the container swaps into the volume between
// the check and the mount cannot redirect the mount to the host's files.
// With create, missing directories of sub are made (emptyDir, hostPath).
func bindSubPath(volume, sub, target string, create bool) error {
	if err := checkSubPath(sub); err != nil {
		return err
	}
	base, err := unix.Open(volume, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open volume %s: %w", volume, err)
	}
	defer unix.Close(base)
	fd, err := openBeneath(base, path.Clean(sub), unix.O_PATH|unix.O_CLOEXEC)
	if errors.Is(err, unix.ENOENT) && create {
		// A missing subPath of a writable volume is made, as a directory.
		if err := mkdirBeneath(base, sub); err != nil {
			return err
		}
		fd, err = openBeneath(base, path.Clean(sub), unix.O_PATH|unix.O_CLOEXEC)
	}
	if err != nil {
		return fmt.Errorf("subPath %q: %w", sub, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("subPath %q: %w", sub, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR

	// A previous run of the container mounted here: its own mount
	// namespace keeps its copy, so the kubelet's may go.
	if err := mounts.UnmountAll(target); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return fmt.Errorf("subPath mount point: %w", err)
	}
	// The mount point matches the source's kind; a leftover of the other
	// kind (the volume changed) is replaced. Nothing is mounted on it now.
	if info, err := os.Lstat(target); err == nil && info.IsDir() != isDir {
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("subPath mount point: %w", err)
		}
	}
	if isDir {
		if err := os.Mkdir(target, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("subPath mount point: %w", err)
		}
	} else {
		f, err := os.OpenFile(target, os.O_RDONLY|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("subPath mount point: %w", err)
		}
		f.Close()
	}
	src := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind subPath %q of %s: %w", sub, volume, err)
	}
	if ok, err := mountinfo.Mounted(target); err != nil || !ok {
		return fmt.Errorf("bind subPath %q of %s: not mounted after mount (%v)", sub, volume, err)
	}
	return nil
}

// openBeneath opens name below dirfd, refusing any escape.
func openBeneath(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{Flags: uint64(flags), Resolve: beneath})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue // a concurrent rename in the volume: try again
		case errors.Is(err, unix.EXDEV):
			return -1, ErrSubPathEscapes
		case errors.Is(err, unix.ENOENT):
			return -1, fmt.Errorf("does not exist in the volume: %w", err)
		default:
			return -1, err
		}
	}
}

// mkdirBeneath makes the directories of sub below dirfd one at a time,
// each opened below the one before, so no step can leave the volume.
func mkdirBeneath(dirfd int, sub string) error {
	cur := dirfd
	defer func() {
		if cur != dirfd {
			unix.Close(cur)
		}
	}()
	for _, elem := range strings.Split(path.Clean(sub), "/") {
		if elem == "" || elem == "." {
			continue
		}
		if err := unix.Mkdirat(cur, elem, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("subPath %q: create %s: %w", sub, elem, err)
		}
		next, err := openBeneath(cur, elem, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
		if err != nil {
			return fmt.Errorf("subPath %q: %s: %w", sub, elem, err)
		}
		if cur != dirfd {
			unix.Close(cur)
		}
		cur = next
	}
	return nil
}
