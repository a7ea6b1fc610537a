package volumes

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The layout of a directory kept by writeAtomic, as Kubernetes' AtomicWriter
// makes it:
//
//	..2026_11_25_09_30_00.123456789/<key>   the payload of one version
//	..data -> ..2026_11_25_09_30_00.123456789
//	<key> -> ..data/<key>                   what the container reads
//
// A new version is written into a fresh timestamped directory and published
// by renaming a new symlink over ..data: a reader sees the old set of files
// or the new one, never a mix or a half-written file.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
	tsDirLayout    = "..2006_01_02_15_04_05."
)

// file is one key of a ConfigMap or Secret volume.
type file struct {
	data []byte
	mode fs.FileMode
}

// checkKey refuses keys that are not plain file names or that would clash
// with the writer's own entries (they begin with "..").
func checkKey(key string) error {
	switch {
	case key == "" || key == "." || key == "..":
		return fmt.Errorf("invalid key %q", key)
	case strings.Contains(key, "/"):
		return fmt.Errorf("invalid key %q: must not contain '/'", key)
	case strings.HasPrefix(key, ".."):
		return fmt.Errorf("invalid key %q: must not start with '..'", key)
	}
	return nil
}

// writeAtomic makes dir show exactly files, atomically. It reports whether
// anything changed; an unchanged payload is left alone (no new version, so
// a container watching ..data sees no spurious update).
func writeAtomic(dir string, files map[string]file) (changed bool, err error) {
	for k := range files {
		if err := checkKey(k); err != nil {
			return false, err
		}
	}
	oldTS, err := os.Readlink(filepath.Join(dir, dataDirName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		oldTS = ""
	case err != nil:
		return false, fmt.Errorf("read %s: %w", dataDirName, err)
	}
	if oldTS != "" {
		same, err := payloadEqual(filepath.Join(dir, oldTS), files)
		if err != nil {
			return false, err
		}
		if same {
			return false, linkKeys(dir, files)
		}
	}

	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format(tsDirLayout))
	if err != nil {
		return false, fmt.Errorf("new data dir: %w", err)
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, errors.Join(fmt.Errorf("new data dir: %w", err), os.RemoveAll(tsDir))
	}
	for k, f := range files {
		if err := writeFile(filepath.Join(tsDir, k), f); err != nil {
			return false, errors.Join(err, os.RemoveAll(tsDir))
		}
	}
	// Publish: a new symlink renamed over ..data swaps every key at once.
	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmpLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, errors.Join(fmt.Errorf("remove stale %s: %w", newDataDirName, err), os.RemoveAll(tsDir))
	}
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return false, errors.Join(fmt.Errorf("link %s: %w", newDataDirName, err), os.RemoveAll(tsDir))
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		return false, errors.Join(fmt.Errorf("publish %s: %w", dataDirName, err), os.Remove(tmpLink), os.RemoveAll(tsDir))
	}
	if err := linkKeys(dir, files); err != nil {
		return true, err
	}
	if err := removeStale(dir, files, filepath.Base(tsDir)); err != nil {
		return true, err
	}
	return true, nil
}

// writeFile writes one key's file and syncs it before it is published.
func writeFile(path string, f file) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	_, err = out.Write(f.data)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The umask must not narrow the mode the volume promises.
		err = os.Chmod(path, f.mode)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// payloadEqual reports whether the version in tsDir holds exactly files.
func payloadEqual(tsDir string, files map[string]file) (bool, error) {
	entries, err := os.ReadDir(tsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read current data dir: %w", err)
	}
	if len(entries) != len(files) {
		return false, nil
	}
	for _, e := range entries {
		f, ok := files[e.Name()]
		if !ok {
			return false, nil
		}
		info, err := e.Info()
		if err != nil {
			return false, fmt.Errorf("read current data dir: %w", err)
		}
		if !info.Mode().IsRegular() || info.Mode().Perm() != f.mode.Perm() || info.Size() != int64(len(f.data)) {
			return false, nil
		}
		b, err := os.ReadFile(filepath.Join(tsDir, e.Name()))
		if err != nil {
			return false, fmt.Errorf("read current data dir: %w", err)
		}
		if !bytes.Equal(b, f.data) {
			return false, nil
		}
	}
	return true, nil
}

// linkKeys makes <key> -> ..data/<key> for every key that lacks it.
func linkKeys(dir string, files map[string]file) error {
	for k := range files {
		p := filepath.Join(dir, k)
		want := filepath.Join(dataDirName, k)
		if got, err := os.Readlink(p); err == nil && got == want {
			continue
		}
		// Something else in the key's place (a leftover of an older layout):
		// only the writer's own entries live here, so replace it.
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("link key %s: %w", k, err)
		}
		if err := os.Symlink(want, p); err != nil {
			return fmt.Errorf("link key %s: %w", k, err)
		}
	}
	return nil
}

// removeStale removes the links of keys that are gone and every data
// version other than current.
func removeStale(dir string, files map[string]file, current string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == dataDirName || name == current:
		case strings.HasPrefix(name, ".."):
			errs = append(errs, os.RemoveAll(filepath.Join(dir, name)))
		default:
			if _, ok := files[name]; !ok {
				errs = append(errs, os.RemoveAll(filepath.Join(dir, name)))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove stale entries: %w", err)
	}
	return nil
}
