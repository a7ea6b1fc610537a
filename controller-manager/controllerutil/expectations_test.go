package controllerutil

import (
	"testing"
	"time"

	"github.com/skiff-dev/skiff/proto/api"
)

func TestExpectationsHoldUntilObservedOrExpired(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := NewExpectations(time.Minute)
	e.now = func() time.Time { return now }
	const key = "default/web"

	if !e.Satisfied(key) {
		t.Fatal("no record must be satisfied")
	}
	e.ExpectCreations(key, 2)
	if e.Satisfied(key) {
		t.Fatal("pending creations satisfied")
	}
	e.CreationObserved(key)
	if ok, left := e.SatisfiedOrExpiresIn(key); ok || left != time.Minute {
		t.Fatalf("one creation left: satisfied %v, expires in %v", ok, left)
	}
	e.CreationObserved(key)
	if !e.Satisfied(key) {
		t.Fatal("all creations observed but not satisfied")
	}
	e.CreationObserved(key) // an extra observation does not go negative
	if a, d := e.Pending(key); a != 0 || d != 0 {
		t.Fatalf("pending %d/%d", a, d)
	}

	e.ExpectDeletions(key, []string{"u1", "u2"})
	e.DeletionObserved(key, "u1")
	e.DeletionObserved(key, "other") // not ours: ignored
	if e.Satisfied(key) {
		t.Fatal("u2 not yet deleted but satisfied")
	}
	now = now.Add(time.Minute + time.Second)
	if !e.Satisfied(key) {
		t.Fatal("expired record still holds")
	}
	e.Delete(key)
	if a, d := e.Pending(key); a != 0 || d != 0 {
		t.Fatalf("deleted key still pending %d/%d", a, d)
	}
}

func TestRemoveOwnerReferenceAndFinalizer(t *testing.T) {
	m := metaWith([]string{"a", "orphan", "b"}, "u1", "u2")
	if !RemoveFinalizer(m, "orphan") || HasFinalizer(m, "orphan") || len(m.Finalizers) != 2 {
		t.Fatalf("finalizers %v", m.Finalizers)
	}
	if RemoveFinalizer(m, "missing") {
		t.Fatal("removed a finalizer that was not there")
	}
	if !RemoveOwnerReference(m, "u1") || len(m.OwnerReferences) != 1 || m.OwnerReferences[0].GetUid() != "u2" {
		t.Fatalf("ownerReferences %v", m.OwnerReferences)
	}
	if IsControlledBy(m, "u1") || !IsControlledBy(m, "u2") {
		t.Fatal("controller ref not found")
	}
}

func metaWith(finalizers []string, uids ...string) *api.ObjectMeta {
	m := &api.ObjectMeta{Finalizers: finalizers}
	for _, u := range uids {
		c := true
		m.OwnerReferences = append(m.OwnerReferences, &api.OwnerReference{Kind: "ReplicaSet", Name: u, Uid: u, Controller: &c})
	}
	return m
}

func TestUncertainExpectationsCarryABarrier(t *testing.T) {
	e := NewExpectations(time.Minute)
	const key = "default/web"
	e.MarkUncertain(key) // no record: nothing to mark
	if _, uncertain := e.Barrier(key); uncertain {
		t.Fatal("uncertain without a record")
	}
	e.ExpectCreations(key, 3)
	if _, uncertain := e.Barrier(key); uncertain {
		t.Fatal("a fresh record is uncertain")
	}
	e.MarkUncertain(key)
	if rv, uncertain := e.Barrier(key); !uncertain || rv != 0 {
		t.Fatalf("Barrier = %d, %v; want 0, true", rv, uncertain)
	}
	e.SetBarrier(key, 42)
	if rv, _ := e.Barrier(key); rv != 42 {
		t.Fatalf("barrier %d, want 42", rv)
	}
	e.ExpectCreations(key, 1) // a new round starts certain
	if _, uncertain := e.Barrier(key); uncertain {
		t.Fatal("a new record inherited uncertainty")
	}
}
