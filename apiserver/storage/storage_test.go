package storage_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

// errStop is a mutation's refusal, such as a failed precondition.
var errStop = errors.New("precondition failed")

func configMap(uid, value string) *api.ConfigMap {
	return &api.ConfigMap{Metadata: &api.ObjectMeta{Namespace: "default", Name: "cm", Uid: uid}, Data: map[string]string{"v": value}}
}

func newConfigMap() kinds.Object { return &api.ConfigMap{} }

// TestGuaranteedUpdate protects the one read-modify-write loop every
// write but Create and Update goes through (Delete, Bind): conflicts are
// retried on a fresh read, an answer computed on a stale hint is never
// final, and the Change decides between write, delete and nothing.
func TestGuaranteedUpdate(t *testing.T) {
	tc := testcluster.Start(t)
	st := tc.Store()
	ctx := t.Context()

	type result struct {
		value   string // data["v"] stored after the call; "" when the key is gone
		err     error
		tries   int  // calls of mutate
		written bool // the call wrote to etcd
	}
	tests := []struct {
		name string
		// stored is what etcd holds; hint, when not nil, is what the
		// caller believes (written first and then overwritten, so its
		// revision is stale).
		stored, hint  *api.ConfigMap
		sides         []string // side keys created with the object
		mutate        func(cur *api.ConfigMap) (storage.Change, error)
		opts          []storage.UpdateOption
		want          result
		wantSidesGone bool
	}{
		{
			name:   "write",
			stored: configMap("u1", "a"),
			mutate: func(cur *api.ConfigMap) (storage.Change, error) {
				cur.Data["v"] = "b"
				return storage.Change{Object: cur}, nil
			},
			want: result{value: "b", tries: 1, written: true},
		},
		{
			name:   "conflict on a stale hint retried on a fresh read",
			stored: configMap("u1", "fresh"), hint: configMap("u1", "stale"),
			mutate: func(cur *api.ConfigMap) (storage.Change, error) {
				cur.Data["v"] += "+1"
				return storage.Change{Object: cur}, nil
			},
			want: result{value: "fresh+1", tries: 2, written: true},
		},
		{
			name:   "refusal on a stale hint checked against a fresh read",
			stored: configMap("u2", "a"), hint: configMap("u1", "a"),
			mutate: func(cur *api.ConfigMap) (storage.Change, error) {
				if cur.GetMetadata().GetUid() != "u2" {
					return storage.Change{}, errStop
				}
				cur.Data["v"] = "b"
				return storage.Change{Object: cur}, nil
			},
			want: result{value: "b", tries: 2, written: true},
		},
		{
			name:   "refusal on a fresh read is final and unwrapped",
			stored: configMap("u1", "a"), hint: configMap("u1", "a"),
			mutate: func(*api.ConfigMap) (storage.Change, error) { return storage.Change{}, errStop },
			want:   result{value: "a", err: errStop, tries: 2},
		},
		{
			name:   "no change on a stale hint checked against a fresh read",
			stored: configMap("u1", "b"), hint: configMap("u1", "a"),
			mutate: func(cur *api.ConfigMap) (storage.Change, error) {
				if cur.Data["v"] == "b" {
					cur.Data["v"] = "c"
					return storage.Change{Object: cur}, nil
				}
				return storage.Change{}, nil
			},
			want: result{value: "c", tries: 2, written: true},
		},
		{
			name:   "no change writes nothing",
			stored: configMap("u1", "a"),
			mutate: func(*api.ConfigMap) (storage.Change, error) { return storage.Change{}, nil },
			want:   result{value: "a", tries: 1},
		},
		{
			name:   "delete removes the side keys in the same transaction",
			stored: configMap("u1", "a"), sides: []string{"/storage-test/side-1", "/storage-test/side-2"},
			mutate: func(cur *api.ConfigMap) (storage.Change, error) {
				return storage.Change{Object: cur, Delete: true, SideKeys: []string{"/storage-test/side-1", "/storage-test/side-2"}}, nil
			},
			want:          result{tries: 1, written: true},
			wantSidesGone: true,
		},
		{
			name:   "dry run writes nothing",
			stored: configMap("u1", "a"),
			mutate: func(cur *api.ConfigMap) (storage.Change, error) {
				return storage.Change{Object: cur, Delete: true}, nil
			},
			opts: []storage.UpdateOption{storage.DryRun(true)},
			want: result{value: "a", tries: 1},
		},
		{
			name:   "missing object",
			mutate: func(*api.ConfigMap) (storage.Change, error) { return storage.Change{}, nil },
			want:   result{err: storage.ErrNotFound},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "/storage-test/" + tt.name
			t.Cleanup(func() {
				_, _ = st.Client().Delete(context.Background(), key)
				for _, k := range tt.sides {
					_, _ = st.Client().Delete(context.Background(), k)
				}
			})
			var hint *storage.Cached
			if tt.hint != nil {
				rev := put(t, st, key, tt.hint)
				hint = &storage.Cached{Object: tt.hint, Revision: rev}
			}
			var startRev int64
			if tt.stored != nil {
				var sides []storage.Side
				for _, k := range tt.sides {
					sides = append(sides, storage.Side{Key: k, Value: []byte("x")})
				}
				data, err := storage.Encode(proto.Clone(tt.stored).(kinds.Object))
				if err != nil {
					t.Fatal(err)
				}
				if hint != nil {
					startRev, err = st.Update(ctx, key, hint.Revision, data)
				} else {
					startRev, err = st.Create(ctx, key, data, sides...)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			tries := 0
			obj, rev, err := st.GuaranteedUpdate(ctx, key, newConfigMap, hint, func(cur kinds.Object, _ int64) (storage.Change, error) {
				tries++
				return tt.mutate(cur.(*api.ConfigMap))
			}, tt.opts...)
			if err != tt.want.err { //nolint:errorlint // the error must come back unwrapped
				t.Fatalf("err = %v, want %v", err, tt.want.err)
			}
			if tries != tt.want.tries {
				t.Errorf("mutate called %d times, want %d", tries, tt.want.tries)
			}
			cur := &api.ConfigMap{}
			storedRev, gerr := st.Get(ctx, key, cur)
			switch {
			case tt.want.value == "" && !errors.Is(gerr, storage.ErrNotFound):
				t.Errorf("object still stored (err %v)", gerr)
			case tt.want.value != "" && (gerr != nil || cur.Data["v"] != tt.want.value):
				t.Errorf("stored v=%q (err %v), want %q", cur.Data["v"], gerr, tt.want.value)
			}
			// Written: the key moved past the revision the case stored, or went.
			if written := startRev != 0 && (errors.Is(gerr, storage.ErrNotFound) || storedRev != startRev); written != tt.want.written {
				t.Errorf("stored revision %d after %d: written=%v, want %v", storedRev, startRev, written, tt.want.written)
			}
			if err == nil && tt.want.value != "" {
				if storedRev != rev {
					t.Errorf("returned revision %d, stored %d", rev, storedRev)
				}
				if got := obj.(*api.ConfigMap).Data["v"]; got != tt.want.value {
					t.Errorf("returned v=%q, stored %q", got, tt.want.value)
				}
			}
			for _, k := range tt.sides {
				exists, err := st.Exists(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				if exists == tt.wantSidesGone {
					t.Errorf("side key %s exists=%v after the call", k, exists)
				}
			}
		})
	}
}

func put(t *testing.T, st *storage.Store, key string, obj kinds.Object) int64 {
	t.Helper()
	data, err := storage.Encode(proto.Clone(obj).(kinds.Object))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := st.Create(t.Context(), key, data)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}
