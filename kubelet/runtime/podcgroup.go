package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cfsPeriod is the CFS period cpu limits are expressed in (100ms).
const cfsPeriod = 100000

// cgroupRoot is where the cgroup filesystems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// PodCgroup is the cgroup that holds a pod's containers,
// /<containerd namespace>/pod<uid>: the pod's limits apply to all of them
// together. runc creates it in the hierarchies the kubelet does not set.
func (r *Runtime) PodCgroup(podUID string) string { return "/" + r.namespace + "/pod" + podUID }

func unified() bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil
}

// EnsurePodCgroup creates the pod cgroup, or updates it, with a memory
// limit in bytes and a cpu limit in millicores (zero: none).
func (r *Runtime) EnsurePodCgroup(podUID string, memory, cpuMilli int64) error {
	path := r.PodCgroup(podUID)
	memLimit, cpuQuota := "-1", "-1"
	memMax, cpuMax := "max", "max "+strconv.Itoa(cfsPeriod)
	if memory > 0 {
		memLimit, memMax = strconv.FormatInt(memory, 10), strconv.FormatInt(memory, 10)
	}
	if cpuMilli > 0 {
		q := strconv.FormatInt(cpuMilli*cfsPeriod/1000, 10)
		cpuQuota, cpuMax = q, q+" "+strconv.Itoa(cfsPeriod)
	}
	type setting struct{ file, value string }
	var settings []setting // in order: the period before the quota
	if unified() {
		// Delegate cpu and memory down to the pod cgroup.
		dir := cgroupRoot
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+cpu +memory"), 0o644)
			dir = filepath.Join(dir, part)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("pod cgroup %s: %w", path, err)
			}
		}
		settings = []setting{{filepath.Join(dir, "memory.max"), memMax}, {filepath.Join(dir, "cpu.max"), cpuMax}}
	} else {
		mem, cpu := filepath.Join(cgroupRoot, "memory", path), filepath.Join(cgroupRoot, "cpu", path)
		for _, d := range []string{mem, cpu} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("pod cgroup %s: %w", path, err)
			}
		}
		settings = []setting{
			{filepath.Join(mem, "memory.limit_in_bytes"), memLimit},
			{filepath.Join(cpu, "cpu.cfs_period_us"), strconv.Itoa(cfsPeriod)},
			{filepath.Join(cpu, "cpu.cfs_quota_us"), cpuQuota},
		}
	}
	for _, s := range settings {
		if err := os.WriteFile(s.file, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("pod cgroup %s: set %s to %s: %w", path, filepath.Base(s.file), s.value, err)
		}
	}
	return nil
}

// RemovePodCgroup deletes the pod cgroup from every hierarchy once its
// containers are gone; a missing one is fine.
func (r *Runtime) RemovePodCgroup(podUID string) error {
	path := r.PodCgroup(podUID)
	dirs := []string{filepath.Join(cgroupRoot, path)}
	if !unified() {
		hierarchies, err := os.ReadDir(cgroupRoot)
		if err != nil {
			return fmt.Errorf("remove pod cgroup %s: %w", path, err)
		}
		dirs = dirs[:0]
		for _, h := range hierarchies {
			if h.IsDir() {
				dirs = append(dirs, filepath.Join(cgroupRoot, h.Name(), path))
			}
		}
	}
	var errs []error
	for _, d := range dirs {
		// rmdir, not RemoveAll: a cgroup directory goes only when empty,
		// and its control files cannot be deleted.
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove pod cgroup %s: %w", path, err)
	}
	return nil
}
