package imagebuild

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
)

// Host paths of the Debian packages the images come from.
const (
	BusyboxBinary = "/bin/busybox" // busybox-static
	NginxBinary   = "/usr/sbin/nginx"
	nginxMime     = "/etc/nginx/mime.types"
	nginxIndex    = "/usr/share/nginx/html/index.html" // nginx-common
)

const passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
const group = "root:x:0:\nnogroup:x:65534:\n"

// baseDirs are the directories every image has, so mounts and tools find
// them.
func (img *Image) baseDirs() {
	for _, d := range []string{"/dev", "/proc", "/sys", "/etc", "/root", "/run", "/var"} {
		img.Dir(d, 0o755)
	}
	img.Dir("/tmp", 0o1777)
	img.File("/etc/passwd", 0o644, []byte(passwd))
	img.File("/etc/group", 0o644, []byte(group))
}

// BusyboxImage is a root filesystem holding the static busybox from
// busybox-static and a symlink for every applet it lists.
func BusyboxImage(ref string) (*Image, error) {
	img := &Image{Ref: ref, Cmd: []string{"sh"}, Env: []string{DefaultPath}, WorkingDir: "/"}
	img.baseDirs()
	if err := img.addBusybox(); err != nil {
		return nil, err
	}
	return img, nil
}

// addBusybox adds the static busybox and its applets (sh, ls, wget, ...),
// the shell and tools `ctl exec -it POD -- sh` expects in an image.
func (img *Image) addBusybox() error {
	if err := img.HostFile("/bin/busybox", BusyboxBinary); err != nil {
		return fmt.Errorf("busybox-static must be installed: %w", err)
	}
	out, err := exec.Command(BusyboxBinary, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		p := "/" + strings.TrimSpace(sc.Text())
		if p == "/" || p == "/bin/busybox" || p == NginxBinary {
			continue
		}
		img.Symlink(p, "/bin/busybox")
	}
	return nil
}

// Busybox writes the busybox image as a docker-archive tarball to w.
func Busybox(w io.Writer, ref string) error {
	img, err := BusyboxImage(ref)
	if err != nil {
		return err
	}
	_, err = img.WriteTo(w)
	return err
}

// nginxConf serves /usr/share/nginx/html on port 80 in the foreground,
// logging to the container's stdout and stderr.
const nginxConf = `user nobody nogroup;
worker_processes 1;
error_log stderr;
pid /run/nginx.pid;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    client_body_temp_path /var/lib/nginx/body;
    sendfile on;
    server {
        listen 80 default_server;
        root /usr/share/nginx/html;
        index index.html;
    }
}
`

// NginxImage is a root filesystem holding nginx-light's binary, every
// shared library ldd lists for it (content copied, symlinks resolved) and
// the dynamic loader, with a minimal configuration listening on port 80.
func NginxImage(ref string) (*Image, error) {
	img := &Image{
		Ref: ref, Cmd: []string{"/usr/sbin/nginx", "-g", "daemon off;"},
		Env: []string{DefaultPath}, WorkingDir: "/", ExposedPorts: []string{"80/tcp"},
	}
	img.baseDirs()
	if err := img.HostFile(NginxBinary, NginxBinary); err != nil {
		return nil, fmt.Errorf("nginx-light must be installed: %w", err)
	}
	libs, err := sharedLibraries(NginxBinary)
	if err != nil {
		return nil, err
	}
	for _, lib := range libs {
		if err := img.HostFile(lib, lib); err != nil {
			return nil, err
		}
	}
	if err := img.HostFile("/etc/nginx/mime.types", nginxMime); err != nil {
		return nil, err
	}
	if err := img.HostFile("/usr/share/nginx/html/index.html", nginxIndex); err != nil {
		return nil, fmt.Errorf("nginx-common's index.html: %w", err)
	}
	img.File("/etc/nginx/nginx.conf", 0o644, []byte(nginxConf))
	img.Dir("/var/lib/nginx/body", 0o755)
	img.Dir("/var/log/nginx", 0o755)
	// As in the official nginx image, a shell and the usual tools.
	if err := img.addBusybox(); err != nil {
		return nil, err
	}
	return img, nil
}

// Nginx writes the nginx image as a docker-archive tarball to w.
func Nginx(w io.Writer, ref string) error {
	img, err := NginxImage(ref)
	if err != nil {
		return err
	}
	_, err = img.WriteTo(w)
	return err
}

// sharedLibraries lists the absolute paths ldd prints for binary: the
// libraries ("libc.so.6 => /lib/…/libc.so.6") and the loader.
func sharedLibraries(binary string) ([]string, error) {
	out, err := exec.Command("ldd", binary).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", binary, err)
	}
	return parseLdd(out), nil
}

func parseLdd(out []byte) []string {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if _, after, ok := strings.Cut(line, "=>"); ok {
			line = strings.TrimSpace(after)
		}
		p, _, _ := strings.Cut(line, " (")
		if path.IsAbs(p) {
			libs = append(libs, p)
		}
	}
	return libs
}

// WriteFile writes a docker-archive built by build (Busybox or Nginx) to
// a file at p.
func WriteFile(p, ref string, build func(io.Writer, string) error) error {
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	if err := build(f, ref); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
