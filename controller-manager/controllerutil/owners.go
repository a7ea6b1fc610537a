package controllerutil

import (
	"context"
	"fmt"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// ControllerOf returns the ownerReference with controller=true, or nil.
func ControllerOf(m *api.ObjectMeta) *api.OwnerReference {
	for _, ref := range m.GetOwnerReferences() {
		if ref.GetController() {
			return ref
		}
	}
	return nil
}

// IsControlledBy reports whether obj's controller is the object with uid.
func IsControlledBy(m *api.ObjectMeta, uid string) bool {
	ref := ControllerOf(m)
	return ref != nil && ref.GetUid() == uid
}

// NewControllerRef is the ownerReference a controller puts on what it
// creates or adopts: controller and blockOwnerDeletion set, as in
// Kubernetes, so foreground deletion waits for the child.
func NewControllerRef(owner kinds.Object) *api.OwnerReference {
	info, err := kinds.For(owner)
	if err != nil {
		panic(err) // owners are always registered kinds
	}
	yes := true
	m := owner.GetMetadata()
	return &api.OwnerReference{
		ApiVersion: info.APIVersion, Kind: info.Kind, Name: m.GetName(), Uid: m.GetUid(),
		Controller: &yes, BlockOwnerDeletion: &yes,
	}
}

// RemoveOwnerReference drops every reference to uid; it reports whether
// one was there.
func RemoveOwnerReference(m *api.ObjectMeta, uid string) bool {
	refs := m.GetOwnerReferences()
	out := refs[:0:0]
	for _, r := range refs {
		if r.GetUid() != uid {
			out = append(out, r)
		}
	}
	if len(out) == len(refs) {
		return false
	}
	m.OwnerReferences = out
	return true
}

// HasFinalizer reports whether the finalizer is in the list.
func HasFinalizer(m *api.ObjectMeta, finalizer string) bool {
	for _, f := range m.GetFinalizers() {
		if f == finalizer {
			return true
		}
	}
	return false
}

// RemoveFinalizer drops finalizer; it reports whether it was there.
func RemoveFinalizer(m *api.ObjectMeta, finalizer string) bool {
	fs := m.GetFinalizers()
	out := fs[:0:0]
	for _, f := range fs {
		if f != finalizer {
			out = append(out, f)
		}
	}
	if len(out) == len(fs) {
		return false
	}
	m.Finalizers = out
	return true
}

// conflictRetries bounds RetryOnConflict; each retry re-reads the object.
const conflictRetries = 5

// RetryOnConflict runs fn until it does not fail with a conflict, at most
// a few times with a short pause: fn must re-read what it writes.
func RetryOnConflict(ctx context.Context, fn func() error) error {
	var err error
	for i := range conflictRetries {
		if err = fn(); !client.IsConflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i+1) * 10 * time.Millisecond):
		}
	}
	return fmt.Errorf("still conflicting after %d tries: %w", conflictRetries, err)
}
