// Package cgroups finds and removes cgroup directories on cgroup v1 and v2
// alike, with rmdir only: a cgroup goes when it has no children and no
// processes, and nothing here ever kills a process.
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DefaultRoot is where the cgroup filesystems are mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Unified reports whether root is a cgroup v2 (unified) mount.
func Unified(root string) bool {
	_, err := os.Stat(filepath.Join(root, "cgroup.controllers"))
	return err == nil
}

// Dirs are the directories of the cgroup path (such as /skiff/pod<uid>)
// under root: one on cgroup v2, one per hierarchy on v1.
func Dirs(root, path string) ([]string, error) {
	if Unified(root) {
		return []string{filepath.Join(root, path)}, nil
	}
	hierarchies, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies in %s: %w", root, err)
	}
	var dirs []string
	for _, h := range hierarchies {
		if h.IsDir() {
			dirs = append(dirs, filepath.Join(root, h.Name(), path))
		}
	}
	return dirs, nil
}

// RemoveTree removes the cgroup at dir and every cgroup below it, deepest
// first. A cgroup's control files cannot (and need not) be deleted; a
// cgroup that still holds processes is an EBUSY error naming it and its
// pids. A missing dir is fine.
func RemoveTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read cgroup %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			if err := RemoveTree(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if procs := procs(dir); procs != "" {
		return fmt.Errorf("cgroup %s still holds processes [%s]: %w", dir, procs, syscall.EBUSY)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rmdir cgroup %s: %w", dir, err)
	}
	return nil
}

// procs lists the pids in a cgroup, space-separated, for errors.
func procs(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// RemoveChildren removes, in every hierarchy, the cgroups directly under
// parent whose names start with prefix, each with RemoveTree. Busy ones
// are errors; the others still go.
func RemoveChildren(root, parent, prefix string) error {
	dirs, err := Dirs(root, parent)
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read cgroup %s: %w", dir, err))
			continue
		}
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
				if err := RemoveTree(filepath.Join(dir, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
