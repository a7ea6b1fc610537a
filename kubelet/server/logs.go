package server

import (
	"context"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// followPoll is how often a followed log is checked for new output.
const followPoll = 200 * time.Millisecond

// Logs implements api.KubeletServer: the container run's log file, its last
// tail_lines lines when set, and with follow everything written after
// until the run exits or the caller goes.
func (s *Server) Logs(req *api.LogsRequest, stream grpc.ServerStreamingServer[api.LogChunk]) error {
	ctx := stream.Context()
	c, err := s.containers.FindContainer(ctx, req.GetNamespace(), req.GetPod(), req.GetContainer(), req.GetPrevious())
	if err != nil {
		return findError(err)
	}
	f, err := os.Open(c.LogPath)
	if os.IsNotExist(err) {
		return nil // no output yet
	}
	if err != nil {
		return status.Errorf(codes.Internal, "open log: %v", err)
	}
	defer f.Close()
	if req.TailLines != nil {
		if err := seekTail(f, *req.TailLines); err != nil {
			return status.Errorf(codes.Internal, "read log: %v", err)
		}
	}
	buf := make([]byte, 32<<10)
	copyAll := func() error {
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if serr := stream.Send(&api.LogChunk{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
					return serr
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return status.Errorf(codes.Internal, "read log: %v", err)
			}
		}
	}
	if err := copyAll(); err != nil || !req.GetFollow() || c.Status != runtime.StatusRunning {
		return err
	}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := copyAll(); err != nil {
			return err
		}
		if i%5 == 4 && !s.running(ctx, c.ID) {
			return copyAll()
		}
	}
}

func (s *Server) running(ctx context.Context, id string) bool {
	ctrs, err := s.rt.Containers(ctx)
	if err != nil {
		return true // keep following; the next check may work
	}
	for _, c := range ctrs {
		if c.ID == id {
			return c.Status == runtime.StatusRunning
		}
	}
	return false
}

// seekTail positions f at the start of its last n lines.
func seekTail(f *os.File, n int64) error {
	if n < 0 {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	end := st.Size()
	if n == 0 {
		_, err := f.Seek(end, io.SeekStart)
		return err
	}
	const chunk = 8 << 10
	buf := make([]byte, chunk)
	var found int64
	for pos := end; pos > 0; {
		size := min(int64(chunk), pos)
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil && err != io.EOF {
			return err
		}
		for i := size - 1; i >= 0; i-- {
			off := pos + i
			// A final newline ends the last line; it does not start one.
			if buf[i] != '\n' || off == end-1 {
				continue
			}
			if found++; found == n {
				_, err := f.Seek(off+1, io.SeekStart)
				return err
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}
