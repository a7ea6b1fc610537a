package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// portForward runs `ctl port-forward target :remote` in the background,
// as a user leaves it running in a terminal, and returns the local port it
// says it listens on; the process is interrupted when the test ends.
func portForward(t *testing.T, ctx context.Context, c *harness.Cluster, target, remote string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, c.CtlBin, "--client-config", c.AdminConfig, "port-forward", target, ":"+remote)
	var stderr lockedBuffer // written by os/exec's copier, read by the test
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ctl port-forward: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ctl port-forward ended with %v after an interrupt; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("ctl port-forward did not stop within 30s of an interrupt")
		}
	})
	// Every line is read, also after the port is known, so the process
	// never blocks on a full pipe ("Handling connection for ...").
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	forwarding := regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:(\d+) -> ` + regexp.QuoteMeta(remote) + `$`)
	timeout := time.After(convergeTimeout)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("ctl port-forward ended before forwarding; stderr:\n%s", stderr.String())
			}
			if m := forwarding.FindStringSubmatch(line); m != nil {
				go func() {
					for range lines {
					}
				}()
				return m[1]
			}
		case <-timeout:
			t.Fatalf("ctl port-forward printed no 'Forwarding from 127.0.0.1:PORT -> %s' line; stderr:\n%s", remote, stderr.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer safe to write and read at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fetchLocal GETs url from this machine (not a node) and checks for nginx's
// welcome page.
func fetchLocal(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), welcomeText) {
		return fmt.Errorf("%s answered %s without %q", url, resp.Status, welcomeText)
	}
	return nil
}
