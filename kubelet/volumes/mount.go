package volumes

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/mounts"
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

// removeUnmounted removes dir once nothing is mounted below it. os.RemoveAll
// never follows symlinks, and with no mount left there is no way out of
// the kubelet's own directory.
func removeUnmounted(dir string) error {
	if err := mounts.UnmountAll(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
