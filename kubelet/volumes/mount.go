package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of at most sizeBytes (0: the kernel's default,
// half the memory) whose root has mode on dir, unless one (or anything) already is.
func mountTmpfs(dir string, sizeBytes int64, mode fs.FileMode) error {
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return fmt.Errorf("check mount %s: %w", dir, err)
	}
	if mounted {
		return nil
	}
	opts := fmt.Sprintf("mode=%#o", uint32(mode.Perm()))
	if sizeBytes > 0 {
		opts += fmt.Sprintf(",size=%d", sizeBytes)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return i.Mountpoint != dir && !strings.HasPrefix(i.Mountpoint, dir+"/"), false
	})
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.Mountpoint)
	}
	sort.Slice(out, func(a, b int) bool {
		return len(out[a]) > len(out[b]) || (len(out[a]) == len(out[b]) && out[a] > out[b])
	})
	return out, nil
}

// unmountUnder unmounts everything mounted at or below dir, deepest first,
// and then checks that nothing is: only then may dir be removed, since a
// removal that crosses a bind mount deletes the files of whatever it shows
// (a hostPath's host directory).
func unmountUnder(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	// Mounts stacked on one point need one unmount each: a few rounds.
	for round := 0; round < 8; round++ {
		mps, err := mountsUnder(real)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			// Detached at once, even if a process still uses it, and
			// never through a symlink planted in the mount point's place.
			if err := unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", mp, err)
			}
		}
	}
	mps, err := mountsUnder(real)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("still mounted under %s after unmounting: %s", dir, strings.Join(mps, ", "))
	}
	return nil
}

// removeUnmounted removes dir once nothing is mounted below it. os.RemoveAll
// never follows symlinks, and with no mount left there is no way out of
// the kubelet's own directory.
func removeUnmounted(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
