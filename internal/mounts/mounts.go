// Package mounts finds and removes the mounts below a directory: the
// kubelet's pod volumes (tmpfs, subPath binds) and everything a local
// cluster's nodes leave under its state directory. Removing a directory
// through a bind mount deletes the files of whatever it shows (a hostPath's
// host directory), so callers unmount everything first and remove only
// once nothing is mounted.
package mounts

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Under lists the mount points at or below dir in this mount namespace,
// deepest first (so they can be unmounted in order).
func Under(dir string) ([]string, error) {
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

// maxRounds bounds the unmount passes: mounts stacked on one point need
// one pass each.
const maxRounds = 10

// UnmountAll detaches everything mounted at or below dir, deepest first,
// even what a process still uses, and never through a symlink planted in
// a mount point's place; then it checks that nothing is left. A missing
// dir has nothing mounted.
func UnmountAll(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	for range maxRounds {
		mps, err := Under(real)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", mp, err)
			}
		}
	}
	mps, err := Under(real)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("still mounted under %s after unmounting: %s", dir, strings.Join(mps, ", "))
	}
	return nil
}
