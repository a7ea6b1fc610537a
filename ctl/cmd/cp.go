package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

type cpOptions struct {
	container  string
	noPreserve bool
}

func newCpCmd(streams IOStreams, f *Factory) *cobra.Command {
	var o cpOptions
	c := &cobra.Command{
		Use:                   "cp <file-spec-src> <file-spec-dest>",
		DisableFlagsInUseLine: true,
		Short:                 "Copy files and directories to and from containers",
		Long: `Copy files and directories to and from containers.

One of the two file specs is a local path, the other [NAMESPACE/]POD:PATH
(a path starting with "/" or "." is local, even with a ":" in it). A
destination that is an existing directory receives the source inside it,
as cp does. cp runs tar in the container through exec ("tar cf - -C DIR NAME"
to copy from it, "tar xmf - -C DIR" to copy into it), so the container's
image must have tar.

Copying from a container never writes outside the local destination:
members that would land outside it are skipped, and so are symlinks that
point outside it, with a warning. Each file is written to a temporary file
beside its destination and renamed into place once it has arrived whole, so
a copy that fails leaves the files that were complete, and no truncated one.
Locally, permission bits are kept and owners are not.`,
		Example: `  # !!!Important Note!!!
  # Requires that the 'tar' binary is present in your container
  # image.  If 'tar' is not present, 'ctl cp' will fail.

  # Copy /tmp/foo_dir local directory to /tmp/bar_dir in a remote pod in the default namespace
  ctl cp /tmp/foo_dir <some-pod>:/tmp/bar_dir

  # Copy /tmp/foo local file to /tmp/bar in a remote pod in a specific container
  ctl cp /tmp/foo <some-pod>:/tmp/bar -c <specific-container>

  # Copy /tmp/foo local file to /tmp/bar in a remote pod in namespace <some-namespace>
  ctl cp /tmp/foo <some-namespace>/<some-pod>:/tmp/bar

  # Copy /tmp/foo from a remote pod to /tmp/bar locally
  ctl cp <some-namespace>/<some-pod>:/tmp/foo /tmp/bar`,
		ValidArgsFunction: completeFileSpec(f),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf(c, "source and destination are required")
			}
			return runCp(c.Context(), streams, f, o, args[0], args[1])
		},
	}
	c.Flags().StringVarP(&o.container, "container", "c", "", "Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation or the first container in the pod")
	c.Flags().BoolVar(&o.noPreserve, "no-preserve", false, "The copied file/directory's ownership and permissions will not be preserved in the container")
	return c
}

// completeFileSpec completes pod names followed by ":", and local files
// when no pod matches.
func completeFileSpec(f *Factory) cobra.CompletionFunc {
	complete := completeResources(f)
	return func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 1 || strings.ContainsAny(toComplete, "/:.~") {
			return nil, cobra.ShellCompDirectiveDefault
		}
		pods, _ := complete(c, []string{"pods"}, toComplete)
		if len(pods) == 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		for i := range pods {
			pods[i] += ":"
		}
		return pods, cobra.ShellCompDirectiveNoSpace
	}
}

// fileSpec is one side of a copy: a local path, or a path in a pod.
type fileSpec struct {
	namespace, pod string // pod is empty for a local path
	path           string
}

func (s fileSpec) remote() bool { return s.pod != "" }

func (s fileSpec) String() string {
	if !s.remote() {
		return s.path
	}
	if s.namespace != "" {
		return s.namespace + "/" + s.pod + ":" + s.path
	}
	return s.pod + ":" + s.path
}

var errFileSpecFormat = errors.New("filespec must match the canonical format: [[namespace/]pod:]file/path")

// parseFileSpec reads [[NAMESPACE/]POD:]PATH as kubectl does; a path
// starting with "/" or "." is local even with a ":" in it.
func parseFileSpec(arg string) (fileSpec, error) {
	i := strings.Index(arg, ":")
	if i < 0 || strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return fileSpec{path: arg}, nil
	}
	if i == 0 {
		return fileSpec{}, errFileSpecFormat
	}
	pod, p := arg[:i], arg[i+1:]
	switch parts := strings.Split(pod, "/"); {
	case len(parts) == 1:
		return fileSpec{pod: pod, path: p}, nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return fileSpec{namespace: parts[0], pod: parts[1], path: p}, nil
	default:
		return fileSpec{}, errFileSpecFormat
	}
}

func runCp(ctx context.Context, streams IOStreams, f *Factory, o cpOptions, srcArg, destArg string) error {
	src, err := parseFileSpec(srcArg)
	if err != nil {
		return err
	}
	dest, err := parseFileSpec(destArg)
	if err != nil {
		return err
	}
	switch {
	case src.remote() && dest.remote():
		return errors.New("one of src or dest must be a local file specification")
	case !src.remote() && !dest.remote():
		return errors.New("one of src or dest must be a remote file specification")
	case src.path == "" || dest.path == "":
		return errors.New("filepath can not be empty")
	}
	if !src.remote() {
		// Checked before any request, as kubectl does.
		if _, err := os.Stat(src.path); err != nil {
			return err
		}
	}
	cl, ns, err := f.clientInNamespace(ctx)
	if err != nil {
		return err
	}
	if src.remote() {
		return copyFromPod(ctx, streams, cl, ns, o, src, dest.path)
	}
	return copyToPod(ctx, streams, cl, ns, o, src.path, dest)
}

// podFor resolves the pod and container of a remote file spec.
func podFor(ctx context.Context, streams IOStreams, cl *client.Client, ns string, o cpOptions, s fileSpec) (*api.ExecStart, error) {
	if s.namespace != "" {
		ns = s.namespace
	}
	return execTarget(ctx, streams, cl, ns, s.pod, o.container)
}

// commandIn is target's pod and container running command.
func commandIn(target *api.ExecStart, stdin bool, command ...string) *api.ExecStart {
	return &api.ExecStart{Namespace: target.GetNamespace(), Pod: target.GetPod(), Container: target.GetContainer(),
		Command: command, Stdin: stdin}
}

// copyFromPod runs tar cf in the container and untars its output locally.
func copyFromPod(ctx context.Context, streams IOStreams, cl *client.Client, ns string, o cpOptions, src fileSpec, dest string) error {
	target, err := podFor(ctx, streams, cl, ns, o, src)
	if err != nil {
		return err
	}
	dir, name := splitRemote(src.path)
	start := commandIn(target, false, "tar", "cf", "-", "-C", dir, tarOperand(name))
	local := localTarget(dest, name)

	pr, pw := io.Pipe()
	untarred := make(chan error, 1)
	go func() {
		err := untar(pr, name, local, streams.ErrOut)
		if err == nil {
			_, err = io.Copy(io.Discard, pr) // tar's padding after the end of the archive
		}
		pr.CloseWithError(err) // a failure here ends the exec through its write to pw
		untarred <- err
	}()
	var stderr bytes.Buffer
	code, err := remoteCommand{start: start, out: pw, errOut: &stderr}.run(ctx, cl)
	pw.CloseWithError(err)
	untarErr := <-untarred
	switch {
	case err != nil && !errors.Is(err, untarErr):
		return err
	case err == nil && code != 0:
		return remoteFailure("copy from "+src.String(), start, code, stderr.String())
	case untarErr != nil:
		return fmt.Errorf("copy %s to %s: %w", src, local, untarErr)
	}
	_, err = streams.ErrOut.Write(stderr.Bytes())
	return err
}

// errCopyEnded stops the local tar when the remote one has ended.
var errCopyEnded = errors.New("the copy ended")

// copyToPod tars src locally and untars it with tar xmf in the container.
func copyToPod(ctx context.Context, streams IOStreams, cl *client.Client, ns string, o cpOptions, src string, dest fileSpec) error {
	target, err := podFor(ctx, streams, cl, ns, o, dest)
	if err != nil {
		return err
	}
	remote := path.Clean(dest.path)
	if base := baseName(filepath.Base(filepath.Clean(src))); base != "." {
		isDir, err := remoteIsDir(ctx, cl, target, remote)
		if err != nil {
			return err
		}
		if isDir {
			remote = path.Join(remote, base)
		}
	}
	dir, name := splitRemote(remote)
	start := commandIn(target, true, untarCommand(dir, o.noPreserve)...)

	pr, pw := io.Pipe()
	tarred := make(chan error, 1)
	go func() {
		err := writeTar(pw, src, name, streams.ErrOut)
		pw.CloseWithError(err)
		tarred <- err
	}()
	var stderr bytes.Buffer
	code, err := remoteCommand{start: start, in: pr, out: streams.Out, errOut: &stderr}.run(ctx, cl)
	pr.CloseWithError(errCopyEnded)
	tarErr := <-tarred
	switch {
	case tarErr != nil && !errors.Is(tarErr, errCopyEnded):
		return fmt.Errorf("copy %s to %s: %w", src, dest, tarErr)
	case err != nil:
		return err
	case code != 0:
		return remoteFailure("copy to "+dest.String(), start, code, stderr.String())
	}
	_, err = streams.ErrOut.Write(stderr.Bytes())
	return err
}

// untarCommand is kubectl's: m leaves modification times to the
// container's clock; --no-preserve adds the flags GNU and busybox tar both
// take for leaving owner and permissions to the container's defaults.
func untarCommand(dir string, noPreserve bool) []string {
	if noPreserve {
		return []string{"tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-", "-C", dir}
	}
	return []string{"tar", "xmf", "-", "-C", dir}
}

// remoteIsDir runs test -d in the container, as kubectl does to decide
// whether the source goes inside the destination.
func remoteIsDir(ctx context.Context, cl *client.Client, target *api.ExecStart, p string) (bool, error) {
	code, err := remoteCommand{start: commandIn(target, false, "test", "-d", p), out: io.Discard, errOut: io.Discard}.run(ctx, cl)
	return err == nil && code == 0, err
}

// remoteFailure reports a remote tar that failed, with what it printed.
func remoteFailure(what string, start *api.ExecStart, code int, stderr string) error {
	msg := fmt.Sprintf("%s: %q in container %s exited with code %d", what, strings.Join(start.GetCommand(), " "), start.GetContainer(), code)
	if code == 126 || code == 127 {
		msg += " (cp needs tar in the container's image)"
	}
	if s := strings.TrimSpace(stderr); s != "" {
		msg += ":\n" + s
	}
	return errors.New(msg)
}

// baseName is the name a path is copied under, "." when it names no
// entry of its own ("/", ".", ".."): then its contents are copied.
func baseName(base string) string {
	switch base {
	case "/", ".", "..":
		return "."
	}
	return base
}

// splitRemote is the directory and name tar is given as -C DIR NAME.
func splitRemote(p string) (dir, name string) {
	p = path.Clean(p)
	if name = baseName(path.Base(p)); name == "." {
		return p, name
	}
	return path.Dir(p), name
}

// tarOperand keeps a name starting with "-" from reading as an option.
func tarOperand(name string) string {
	if strings.HasPrefix(name, "-") {
		return "./" + name
	}
	return name
}

// localTarget is where name lands: inside dest when dest is an existing
// directory, as cp does, else dest itself.
func localTarget(dest, name string) string {
	if name == "." {
		return dest
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return filepath.Join(dest, name)
	}
	return dest
}
