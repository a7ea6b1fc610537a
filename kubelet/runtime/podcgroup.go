package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/skiff-dev/skiff/internal/cgroups"
)

// cfsPeriod is the CFS period cpu limits are expressed in (100ms).
const cfsPeriod = 100000

// DefaultCgroupRoot is where the cgroup filesystems are mounted.
const DefaultCgroupRoot = cgroups.DefaultRoot

// PodCgroup is the cgroup that holds a pod's containers,
// /<containerd namespace>/pod<uid>: the pod's limits apply to all of them
// together. runc creates it in the hierarchies the kubelet does not set.
func (r *Runtime) PodCgroup(podUID string) string { return "/" + r.namespace + "/pod" + podUID }

func (r *Runtime) unified() bool { return cgroups.Unified(r.cgroupRoot) }

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
	if r.unified() {
		// Delegate cpu and memory down to the pod cgroup.
		dir := r.cgroupRoot
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+cpu +memory"), 0o644)
			dir = filepath.Join(dir, part)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("pod cgroup %s: %w", path, err)
			}
		}
		settings = []setting{{filepath.Join(dir, "memory.max"), memMax}, {filepath.Join(dir, "cpu.max"), cpuMax}}
	} else {
		mem, cpu := filepath.Join(r.cgroupRoot, "memory", path), filepath.Join(r.cgroupRoot, "cpu", path)
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
// containers are gone; a missing one is fine. Child cgroups left empty
// under it (a container whose task create was cut short leaves its
// cgroup behind, and nothing else removes it) are removed first, deepest
// first. A cgroup that still holds processes is an error naming it: it is
// never killed here.
func (r *Runtime) RemovePodCgroup(podUID string) error {
	path := r.PodCgroup(podUID)
	dirs, err := cgroups.Dirs(r.cgroupRoot, path)
	if err != nil {
		return fmt.Errorf("remove pod cgroup %s: %w", path, err)
	}
	var errs []error
	for _, d := range dirs {
		if err := cgroups.RemoveTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove pod cgroup %s: %w", path, err)
	}
	return nil
}
