package leaderelection

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

// fakeLeases stores one Lease with resourceVersion checks, like the
// apiserver does.
type fakeLeases struct {
	api.APIClient
	mu        sync.Mutex
	lease     *api.Lease
	rev       int64
	updateErr error // returned by the next Update
	createErr error // returned by the next Create
}

func (f *fakeLeases) Get(_ context.Context, req *api.GetRequest, _ ...grpc.CallOption) (*anypb.Any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease == nil {
		return nil, status.Error(codes.NotFound, "leases not found")
	}
	return anypb.New(f.lease)
}

func (f *fakeLeases) Create(_ context.Context, req *api.CreateRequest, _ ...grpc.CallOption) (*anypb.Any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.createErr; err != nil {
		f.createErr = nil
		return nil, err
	}
	if f.lease != nil {
		return nil, status.Error(codes.AlreadyExists, "lease exists")
	}
	l := &api.Lease{}
	if err := req.Object.UnmarshalTo(l); err != nil {
		return nil, err
	}
	return f.store(l)
}

func (f *fakeLeases) Update(_ context.Context, req *api.UpdateRequest, _ ...grpc.CallOption) (*anypb.Any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.updateErr; err != nil {
		f.updateErr = nil
		return nil, err
	}
	l := &api.Lease{}
	if err := req.Object.UnmarshalTo(l); err != nil {
		return nil, err
	}
	if l.Metadata.ResourceVersion != f.lease.Metadata.ResourceVersion {
		return nil, status.Error(codes.Aborted, "conflict")
	}
	return f.store(l)
}

func (f *fakeLeases) store(l *api.Lease) (*anypb.Any, error) {
	f.rev++
	l.Metadata.ResourceVersion = strconv.FormatInt(f.rev, 10)
	f.lease = proto.Clone(l).(*api.Lease)
	return anypb.New(l)
}

func (f *fakeLeases) get() *api.Lease {
	f.mu.Lock()
	defer f.mu.Unlock()
	return proto.Clone(f.lease).(*api.Lease)
}

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func leaseHeld(holder string, renewed time.Time, transitions int32) *api.Lease {
	d := int32(15)
	spec := &api.LeaseSpec{HolderIdentity: holder, LeaseDurationSeconds: &d, LeaseTransitions: transitions,
		AcquireTime: timestamppb.New(t0.Add(-time.Hour))}
	if !renewed.IsZero() {
		spec.RenewTime = timestamppb.New(renewed)
	}
	return &api.Lease{Metadata: &api.ObjectMeta{Namespace: "skiff-system", Name: "cm", ResourceVersion: "7"}, Spec: spec}
}

func TestTryAcquireOrRenew(t *testing.T) {
	now := t0
	tests := []struct {
		name        string
		lease       *api.Lease
		updateErr   error
		createErr   error
		want        bool
		wantErr     func(error) bool
		holder      string
		transitions int32
		acquired    time.Time // want acquireTime
	}{
		{name: "no lease: create it", want: true, holder: "me", transitions: 0, acquired: now},
		{name: "create race lost", createErr: status.Error(codes.AlreadyExists, "x"), wantErr: client.IsAlreadyExists},
		{name: "released lease: take it", lease: leaseHeld("", now.Add(-time.Second), 3), want: true, holder: "me", transitions: 4, acquired: now},
		{name: "held by another and fresh: wait", lease: leaseHeld("other", now.Add(-14*time.Second), 3),
			wantErr: func(err error) bool { return errors.Is(err, errHeldByOther) }, holder: "other", transitions: 3, acquired: t0.Add(-time.Hour)},
		{name: "held by another but expired: take over", lease: leaseHeld("other", now.Add(-16*time.Second), 3), want: true, holder: "me", transitions: 4, acquired: now},
		{name: "held by another, never renewed: take over", lease: leaseHeld("other", time.Time{}, 0), want: true, holder: "me", transitions: 1, acquired: now},
		{name: "held by me: renew", lease: leaseHeld("me", now.Add(-2*time.Second), 5), want: true, holder: "me", transitions: 5, acquired: t0.Add(-time.Hour)},
		{name: "conflict: another candidate won", lease: leaseHeld("", now, 3), updateErr: status.Error(codes.Aborted, "conflict"), wantErr: client.IsConflict, holder: "", transitions: 3, acquired: t0.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLeases{lease: tt.lease, updateErr: tt.updateErr, createErr: tt.createErr, rev: 7}
			cfg := Config{Client: &client.Client{API: f}, Name: "cm", Identity: "me"}
			if err := cfg.complete(); err != nil {
				t.Fatal(err)
			}
			e := &elector{cfg: cfg, leases: cfg.Client.Leases(), now: func() time.Time { return now }, log: cfg.Logger}
			ok, err := e.tryAcquireOrRenew(context.Background())
			if ok != tt.want {
				t.Fatalf("ok = %v (err %v), want %v", ok, err, tt.want)
			}
			if tt.wantErr != nil && !tt.wantErr(err) {
				t.Fatalf("err = %v, not the expected kind", err)
			}
			if tt.want && err != nil {
				t.Fatalf("err = %v with ok", err)
			}
			got := f.get()
			if got == nil {
				if tt.holder != "" {
					t.Fatal("no lease stored")
				}
				return
			}
			s := got.Spec
			if s.HolderIdentity != tt.holder || s.LeaseTransitions != tt.transitions || !s.AcquireTime.AsTime().Equal(tt.acquired) {
				t.Errorf("lease = holder %q transitions %d acquired %v; want %q %d %v",
					s.HolderIdentity, s.LeaseTransitions, s.AcquireTime.AsTime(), tt.holder, tt.transitions, tt.acquired)
			}
			if tt.want {
				if !s.RenewTime.AsTime().Equal(now) || s.GetLeaseDurationSeconds() != 15 {
					t.Errorf("renewTime %v duration %d, want now and 15", s.RenewTime.AsTime(), s.GetLeaseDurationSeconds())
				}
			}
		})
	}
}

func TestReleaseClearsHolderOnlyIfStillHeld(t *testing.T) {
	for _, tt := range []struct {
		name       string
		thief      bool
		unseen     bool // a renewal was written but its answer lost
		wantHolder string
	}{
		{name: "still held: released", wantHolder: ""},
		{name: "renewal answer lost: still released", unseen: true, wantHolder: ""},
		{name: "taken meanwhile: left alone", thief: true, wantHolder: "thief"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLeases{}
			cfg := Config{Client: &client.Client{API: f}, Name: "cm", Identity: "me"}
			if err := cfg.complete(); err != nil {
				t.Fatal(err)
			}
			e := &elector{cfg: cfg, leases: cfg.Client.Leases(), now: time.Now, log: cfg.Logger}
			if ok, err := e.tryAcquireOrRenew(context.Background()); !ok {
				t.Fatal(err)
			}
			if tt.thief || tt.unseen {
				l := f.get()
				if tt.thief {
					l.Spec.HolderIdentity = "thief"
				}
				f.mu.Lock()
				f.store(l)
				f.mu.Unlock()
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // release runs after the candidate's context ended
			e.release(ctx)
			l := f.get()
			if l.Spec.HolderIdentity != tt.wantHolder {
				t.Fatalf("holder = %q, want %q", l.Spec.HolderIdentity, tt.wantHolder)
			}
			if tt.wantHolder == "" && l.Spec.GetLeaseDurationSeconds() != 1 {
				t.Errorf("released lease duration = %d, want 1", l.Spec.GetLeaseDurationSeconds())
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	c := &client.Client{API: &fakeLeases{}}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{Client: c, Name: "n", Identity: "i"}},
		{name: "no identity", cfg: Config{Client: c, Name: "n"}, wantErr: "Identity"},
		{name: "no client", cfg: Config{Name: "n", Identity: "i"}, wantErr: "Client"},
		{name: "lease not longer than renew deadline", cfg: Config{Client: c, Name: "n", Identity: "i", LeaseDuration: 10 * time.Second}, wantErr: "greater than RenewDeadline"},
		{name: "renew deadline too close to retry", cfg: Config{Client: c, Name: "n", Identity: "i", RenewDeadline: 2 * time.Second}, wantErr: "RetryPeriod"},
		{name: "sub-second lease", cfg: Config{Client: c, Name: "n", Identity: "i", LeaseDuration: 500 * time.Millisecond, RenewDeadline: 400 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}, wantErr: "granularity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.complete()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.cfg.Namespace != "skiff-system" || tt.cfg.LeaseDuration != 15*time.Second || tt.cfg.RenewDeadline != 10*time.Second || tt.cfg.RetryPeriod != 2*time.Second {
					t.Errorf("defaults = %+v", tt.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
