package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// Image pull policies.
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// ErrImageNeverPull is returned for a missing image under policy Never.
var ErrImageNeverPull = errors.New("image is not present and imagePullPolicy is Never")

// NormalizeImage turns a pod's image into containerd's full reference:
// "nginx" → "docker.io/library/nginx:latest".
func NormalizeImage(image string) (string, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", image, err)
	}
	return named.String(), nil
}

// EnsureImage makes the image present and unpacked according to the pull
// policy, pulling it when needed, and returns it. Under Always a failed pull
// falls back on a copy already on the node (preloaded images on an
// air-gapped node), with a warning.
func (r *Runtime) EnsureImage(ctx context.Context, image, policy string) (containerd.Image, error) {
	ref, err := NormalizeImage(image)
	if err != nil {
		return nil, err
	}
	if policy != PullAlways {
		img, err := r.client.GetImage(ctx, ref)
		switch {
		case err == nil:
			if err := r.unpack(ctx, img); err != nil {
				return nil, err
			}
			return img, nil
		case !errdefs.IsNotFound(err):
			return nil, fmt.Errorf("look up image %s: %w", ref, err)
		case policy == PullNever:
			return nil, fmt.Errorf("%s: %w", ref, ErrImageNeverPull)
		}
	}
	img, err := r.Pull(ctx, ref)
	if err == nil || policy != PullAlways {
		return img, err
	}
	// An air-gapped node cannot honour Always for its preloaded images:
	// fall back on the local copy rather than fail a pod whose image is
	// right here.
	local, lerr := r.client.GetImage(ctx, ref)
	if lerr != nil {
		return nil, err
	}
	r.log.Warn("pull failed, using the image present on the node", "image", ref, "err", err)
	if err := r.unpack(ctx, local); err != nil {
		return nil, err
	}
	return local, nil
}

// Pull fetches and unpacks an image, over plain HTTP for the registries
// configured as insecure.
func (r *Runtime) Pull(ctx context.Context, image string) (containerd.Image, error) {
	ref, err := NormalizeImage(image)
	if err != nil {
		return nil, err
	}
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(func(host string) (bool, error) {
			return r.insecure[host], nil
		})),
	})
	r.log.Info("pulling image", "image", ref)
	img, err := r.client.Pull(ctx, ref, containerd.WithPullUnpack, containerd.WithResolver(resolver))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img, nil
}

func (r *Runtime) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, "")
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Name(), err)
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, ""); err != nil {
		return fmt.Errorf("unpack %s: %w", img.Name(), err)
	}
	return nil
}

// Import reads a docker-archive or OCI tarball, stores and unpacks its
// images, and returns their names.
func (r *Runtime) Import(ctx context.Context, rd io.Reader) ([]string, error) {
	imgs, err := r.client.Import(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("import images: %w", err)
	}
	var names []string
	for _, i := range imgs {
		if err := r.unpack(ctx, containerd.NewImage(r.client, i)); err != nil {
			return nil, err
		}
		names = append(names, i.Name)
	}
	return names, nil
}

// ImportDir imports every *.tar file of dir (the preload directory of an
// air-gapped node). A missing directory imports nothing.
func (r *Runtime) ImportDir(ctx context.Context, dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var names []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return names, fmt.Errorf("preload: %w", err)
		}
		n, err := r.Import(ctx, fh)
		fh.Close()
		if err != nil {
			return names, fmt.Errorf("preload %s: %w", f, err)
		}
		r.log.Info("imported preloaded images", "file", f, "images", n)
		names = append(names, n...)
	}
	return names, nil
}

// ImageInfo is an image the node holds, for the Node's status.images.
type ImageInfo struct {
	Names []string
	Size  int64
}

// Images lists the images present.
func (r *Runtime) Images(ctx context.Context) ([]ImageInfo, error) {
	imgs, err := r.client.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]ImageInfo, 0, len(imgs))
	for _, img := range imgs {
		size, _ := img.Size(ctx)
		out = append(out, ImageInfo{Names: []string{img.Name()}, Size: size})
	}
	return out, nil
}
