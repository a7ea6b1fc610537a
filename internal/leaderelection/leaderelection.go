// Package leaderelection elects one leader among replicas of a component
// through a Lease object, with client-go's semantics: a candidate takes the
// lease when it is free or expired (renewTime + leaseDurationSeconds in the
// past), the leader renews it every RetryPeriod and steps down when it has
// not renewed for RenewDeadline, every write is guarded by the lease's
// resourceVersion (a conflict means another candidate won), and a leader
// that stops on purpose clears holderIdentity so a standby takes over at
// once.
//
// Expiry compares the lease's renewTime with the local clock, so the clocks
// of the candidates must agree to well within LeaseDuration - RenewDeadline.
// It must never run the leader's work itself: that is OnStartedLeading's.
package leaderelection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

// ErrLeaderLost is what Run returns when the lease could not be renewed in
// time or was taken by another candidate. The caller normally exits, as
// kube-controller-manager does, and lets its supervisor restart it.
var ErrLeaderLost = errors.New("leader election lost")

// errHeldByOther says another candidate holds a lease that has not expired.
var errHeldByOther = errors.New("lease held by another candidate")

// Config of one candidate. Zero durations take client-go's defaults.
type Config struct {
	Client *client.Client
	// Namespace of the Lease; default skiff-system.
	Namespace string
	// Name of the Lease, usually the component ("controller-manager").
	Name string
	// Identity of this candidate, unique among them (hostname + a random
	// suffix, say).
	Identity string
	// LeaseDuration is how long a lease holds after its last renewal
	// (default 15s); standbys wait this long for a leader that vanished.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// steps down (default 10s). Less than LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is the time between attempts to acquire or renew
	// (default 2s).
	RetryPeriod time.Duration
	// OnStartedLeading runs the leader's work; its context ends when
	// leadership ends, and it must return promptly then: the lease is only
	// released after it has returned.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading is called after OnStartedLeading returned, whether
	// leadership was lost or given up. Not called if this candidate never
	// led.
	OnStoppedLeading func()
	// OnNewLeader, if set, is told each time the observed holder changes.
	OnNewLeader func(identity string)
	Logger      *slog.Logger
}

func (c *Config) complete() error {
	if c.Client == nil || c.Name == "" || c.Identity == "" {
		return errors.New("leader election: Client, Name and Identity are required")
	}
	if c.Namespace == "" {
		c.Namespace = "skiff-system"
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = 15 * time.Second
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = 10 * time.Second
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = 2 * time.Second
	}
	if c.LeaseDuration < time.Second {
		return fmt.Errorf("leader election: LeaseDuration %v is under the lease's 1s granularity", c.LeaseDuration)
	}
	if c.LeaseDuration <= c.RenewDeadline {
		return fmt.Errorf("leader election: LeaseDuration %v must be greater than RenewDeadline %v", c.LeaseDuration, c.RenewDeadline)
	}
	if float64(c.RenewDeadline) <= jitterFactor*float64(c.RetryPeriod) {
		return fmt.Errorf("leader election: RenewDeadline %v must be greater than %v x RetryPeriod %v", c.RenewDeadline, jitterFactor, c.RetryPeriod)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// jitterFactor bounds the random stretch of the acquire retry period.
const jitterFactor = 1.2

// Run campaigns for the lease until ctx ends or, once leading, until
// leadership is lost. It returns nil when ctx ended (releasing the lease if
// held) and ErrLeaderLost when leadership was lost.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.complete(); err != nil {
		return err
	}
	e := &elector{
		cfg:    cfg,
		leases: cfg.Client.Leases(),
		now:    time.Now,
		log:    cfg.Logger.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity),
	}
	return e.run(ctx)
}

type elector struct {
	cfg    Config
	leases *client.ResourceClient[*api.Lease]
	now    func() time.Time
	log    *slog.Logger

	lastRenew time.Time // local time of the last successful write
	observed  string    // holder last seen
}

func (e *elector) run(ctx context.Context) error {
	if !e.acquire(ctx) {
		return nil
	}
	e.log.Info("became leader")
	leaderCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if e.cfg.OnStartedLeading != nil {
			e.cfg.OnStartedLeading(leaderCtx)
		}
	}()
	lost := e.renew(ctx)
	cancel()
	<-done
	if lost {
		e.log.Warn("leadership lost")
	} else {
		e.release(ctx)
	}
	if e.cfg.OnStoppedLeading != nil {
		e.cfg.OnStoppedLeading()
	}
	if lost {
		return ErrLeaderLost
	}
	return nil
}

// acquire tries every RetryPeriod (stretched by up to 20%) until it holds
// the lease or ctx ends.
func (e *elector) acquire(ctx context.Context) bool {
	for {
		ok, err := e.tryAcquireOrRenew(ctx)
		if ok {
			return true
		}
		if err != nil && !errors.Is(err, errHeldByOther) && ctx.Err() == nil {
			e.log.Warn("acquire lease", "err", err)
		}
		d := e.cfg.RetryPeriod + time.Duration(rand.Float64()*(jitterFactor-1)*float64(e.cfg.RetryPeriod))
		if !sleep(ctx, d) {
			return false
		}
	}
}

// renew keeps the lease every RetryPeriod. It returns true when leadership
// is lost and false when ctx ended.
func (e *elector) renew(ctx context.Context) bool {
	for {
		if !sleep(ctx, e.cfg.RetryPeriod) {
			return false
		}
		rctx, cancel := context.WithDeadline(ctx, e.lastRenew.Add(e.cfg.RenewDeadline))
		for {
			ok, err := e.tryAcquireOrRenew(rctx)
			if ok {
				break
			}
			if ctx.Err() != nil {
				cancel()
				return false
			}
			if errors.Is(err, errHeldByOther) || rctx.Err() != nil {
				cancel()
				e.log.Warn("renew lease", "err", err)
				return true
			}
			e.log.Warn("renew lease, retrying", "err", err)
			if !sleep(rctx, e.cfg.RetryPeriod) && ctx.Err() == nil {
				cancel()
				return true
			}
		}
		cancel()
	}
}

// tryAcquireOrRenew makes one attempt to create, take over or renew the
// lease. It reports whether this candidate holds it now.
func (e *elector) tryAcquireOrRenew(ctx context.Context) (bool, error) {
	now := e.now()
	durSec := int32(e.cfg.LeaseDuration / time.Second)
	lease, err := e.leases.Get(ctx, e.cfg.Namespace, e.cfg.Name)
	if client.IsNotFound(err) {
		created, err := e.leases.Create(ctx, &api.Lease{
			Metadata: &api.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name},
			Spec: &api.LeaseSpec{
				HolderIdentity: e.cfg.Identity, LeaseDurationSeconds: &durSec,
				AcquireTime: timestamppb.New(now), RenewTime: timestamppb.New(now),
			},
		})
		if err != nil {
			return false, fmt.Errorf("create lease: %w", err)
		}
		e.wrote(created, now)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("get lease: %w", err)
	}
	spec := lease.GetSpec()
	e.observe(spec.GetHolderIdentity())
	if h := spec.GetHolderIdentity(); h != "" && h != e.cfg.Identity && !expired(spec, now) {
		return false, errHeldByOther
	}
	upd := proto.Clone(lease).(*api.Lease)
	if upd.Spec == nil {
		upd.Spec = &api.LeaseSpec{}
	}
	if spec.GetHolderIdentity() != e.cfg.Identity {
		upd.Spec.HolderIdentity = e.cfg.Identity
		upd.Spec.AcquireTime = timestamppb.New(now)
		upd.Spec.LeaseTransitions = spec.GetLeaseTransitions() + 1
	}
	upd.Spec.RenewTime = timestamppb.New(now)
	upd.Spec.LeaseDurationSeconds = &durSec
	updated, err := e.leases.Update(ctx, upd)
	if err != nil {
		// A conflict means another candidate wrote first.
		return false, fmt.Errorf("update lease: %w", err)
	}
	e.wrote(updated, now)
	return true, nil
}

// expired reports a lease whose holder has not renewed it in time; a lease
// with no renewTime has never been held.
func expired(spec *api.LeaseSpec, now time.Time) bool {
	if spec.GetRenewTime() == nil {
		return true
	}
	d := time.Duration(spec.GetLeaseDurationSeconds()) * time.Second
	return spec.GetRenewTime().AsTime().Add(d).Before(now)
}

func (e *elector) wrote(lease *api.Lease, now time.Time) {
	e.lastRenew = now
	e.observe(lease.GetSpec().GetHolderIdentity())
}

func (e *elector) observe(holder string) {
	if holder == e.observed {
		return
	}
	e.observed = holder
	if holder == "" {
		return
	}
	e.log.Info("new leader observed", "leader", holder)
	if e.cfg.OnNewLeader != nil {
		e.cfg.OnNewLeader(holder)
	}
}

// release gives the lease up so a standby need not wait for it to expire.
// It reads the lease afresh: a renewal cut short by ctx may have been
// written without this candidate seeing the new resourceVersion. ctx has
// ended by now; only its values are used.
func (e *elector) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RenewDeadline)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := e.releaseOnce(ctx)
		if err == nil {
			return
		}
		if !client.IsConflict(err) || attempt == 2 {
			e.log.Warn("release lease", "err", err)
			return
		}
	}
}

func (e *elector) releaseOnce(ctx context.Context) error {
	lease, err := e.leases.Get(ctx, e.cfg.Namespace, e.cfg.Name)
	if err != nil {
		return err
	}
	if lease.GetSpec().GetHolderIdentity() != e.cfg.Identity {
		return nil // someone else's now
	}
	now := e.now()
	one := int32(1)
	lease.Spec.HolderIdentity = ""
	lease.Spec.LeaseDurationSeconds = &one
	lease.Spec.AcquireTime = timestamppb.New(now)
	lease.Spec.RenewTime = timestamppb.New(now)
	if _, err := e.leases.Update(ctx, lease); err != nil {
		return err
	}
	e.log.Info("released lease")
	return nil
}

// sleep waits d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
