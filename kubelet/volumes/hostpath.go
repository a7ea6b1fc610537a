package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Host path types, as Kubernetes names them (HostPathType).
const (
	HostPathUnset             = ""
	HostPathDirectoryOrCreate = "DirectoryOrCreate"
	HostPathDirectory         = "Directory"
	HostPathFileOrCreate      = "FileOrCreate"
	HostPathFile              = "File"
	HostPathSocket            = "Socket"
	HostPathCharDevice        = "CharDevice"
	HostPathBlockDevice       = "BlockDevice"
)

// checkHostPath makes sure path is what typ says, creating it for the
// *OrCreate types as Kubernetes does (a directory 0755 with its parents; a
// file 0644 in an existing directory). Symlinks are followed, as the bind
// mount will follow them.
func checkHostPath(path, typ string) error {
	if typ == HostPathUnset {
		return nil
	}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		switch typ {
		case HostPathDirectoryOrCreate:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath type check failed: create directory %s: %w", path, err)
			}
		case HostPathFileOrCreate:
			f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
			if err != nil {
				return fmt.Errorf("hostPath type check failed: create file %s: %w", path, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("hostPath type check failed: create file %s: %w", path, err)
			}
		default:
			return fmt.Errorf("hostPath type check failed: %s does not exist (type %s)", path, typ)
		}
		if info, err = os.Stat(path); err != nil {
			return fmt.Errorf("hostPath type check failed: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("hostPath type check failed: %w", err)
	}
	mode := info.Mode()
	var ok bool
	var what string
	switch typ {
	case HostPathDirectoryOrCreate, HostPathDirectory:
		ok, what = mode.IsDir(), "a directory"
	case HostPathFileOrCreate, HostPathFile:
		ok, what = mode.IsRegular(), "a file"
	case HostPathSocket:
		ok, what = mode&fs.ModeSocket != 0, "a socket file"
	case HostPathCharDevice:
		ok, what = mode&fs.ModeCharDevice != 0, "a character device"
	case HostPathBlockDevice:
		ok, what = mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0 && isBlock(info), "a block device"
	default:
		return fmt.Errorf("hostPath type check failed: unknown type %q", typ)
	}
	if !ok {
		return fmt.Errorf("hostPath type check failed: %s is not %s", path, what)
	}
	return nil
}

func isBlock(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Mode&syscall.S_IFMT == syscall.S_IFBLK
}
