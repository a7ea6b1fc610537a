// Package storage keeps API objects in etcd as protobuf bytes and turns etcd
// revisions into resourceVersions. It is the only code in Skiff that writes
// to etcd.
//
// It must never interpret objects beyond decoding them: defaulting,
// validation and API semantics live in the layers above.
package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// Errors a caller maps to API codes.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("the object has been modified")
)

// Store reads and writes objects under one key prefix ("/registry").
type Store struct {
	cli    *clientv3.Client
	prefix string
}

// New returns a store writing under prefix.
func New(cli *clientv3.Client, prefix string) *Store {
	return &Store{cli: cli, prefix: prefix}
}

// Client is the underlying etcd client, for the watch cache.
func (s *Store) Client() *clientv3.Client { return s.cli }

// ResourcePrefix is the key prefix every object of a resource lives under.
func (s *Store) ResourcePrefix(resource string) string {
	return s.prefix + "/" + resource + "/"
}

// Key is an object's etcd key.
func (s *Store) Key(resource, namespace, name string) string {
	if namespace == "" {
		return s.ResourcePrefix(resource) + name
	}
	return s.ResourcePrefix(resource) + namespace + "/" + name
}

// NamespacePrefix is the prefix of a resource's objects in one namespace;
// an empty namespace means all of them.
func (s *Store) NamespacePrefix(resource, namespace string) string {
	if namespace == "" {
		return s.ResourcePrefix(resource)
	}
	return s.ResourcePrefix(resource) + namespace + "/"
}

// Side is an extra key written in the same transaction as an object, such as
// a Service's ClusterIP allocation: created only if absent, deleted with it.
type Side struct {
	Key   string
	Value []byte
}

// Encode is an object as stored: protobuf without its resourceVersion,
// which is the etcd revision and known only after the write. It clears
// obj's resourceVersion.
func Encode(obj kinds.Object) ([]byte, error) {
	kinds.Meta(obj).ResourceVersion = ""
	data, err := proto.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", obj.GetMetadata().GetName(), err)
	}
	return data, nil
}

// Create stores a new object's bytes (see Encode); ErrAlreadyExists if the key or any side key is
// taken. It returns the revision written.
func (s *Store) Create(ctx context.Context, key string, data []byte, sides ...Side) (int64, error) {
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	ops := []clientv3.Op{clientv3.OpPut(key, string(data))}
	for _, side := range sides {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(side.Key), "=", 0))
		ops = append(ops, clientv3.OpPut(side.Key, string(side.Value)))
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, ErrAlreadyExists
	}
	return resp.Header.Revision, nil
}

// Get decodes the object at key into obj and returns its revision.
func (s *Store) Get(ctx context.Context, key string, obj kinds.Object) (int64, error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, ErrNotFound
	}
	if err := proto.Unmarshal(resp.Kvs[0].Value, obj); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return resp.Kvs[0].ModRevision, nil
}

// GetRaw returns the stored bytes at key and the revision that wrote them.
func (s *Store) GetRaw(ctx context.Context, key string) ([]byte, int64, error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, ErrNotFound
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

// Exists reports whether a key holds a value.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	resp, err := s.cli.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("get %s: %w", key, err)
	}
	return resp.Count > 0, nil
}

// RawItem is one stored object as etcd holds it.
type RawItem struct {
	Key      string
	Value    []byte
	Revision int64
}

// List returns every object under prefix and the store's revision at the
// time of the read.
func (s *Store) List(ctx context.Context, prefix string) ([]RawItem, int64, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	items := make([]RawItem, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		items[i] = RawItem{Key: string(kv.Key), Value: kv.Value, Revision: kv.ModRevision}
	}
	return items, resp.Header.Revision, nil
}

// Update writes obj at key if the stored revision is still expectRev;
// ErrConflict otherwise, ErrNotFound when the key is gone.
func (s *Store) Update(ctx context.Context, key string, expectRev int64, data []byte) (int64, error) {
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", expectRev)).
		Then(clientv3.OpPut(key, string(data))).
		Else(clientv3.OpGet(key, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("update %s: %w", key, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().GetCount() == 0 {
			return 0, ErrNotFound
		}
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

// Delete removes key (and side keys) if its revision is still expectRev.
// It returns the revision of the deletion.
func (s *Store) Delete(ctx context.Context, key string, expectRev int64, sideKeys ...string) (int64, error) {
	ops := []clientv3.Op{clientv3.OpDelete(key)}
	for _, k := range sideKeys {
		ops = append(ops, clientv3.OpDelete(k))
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", expectRev)).
		Then(ops...).
		Else(clientv3.OpGet(key, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", key, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().GetCount() == 0 {
			return 0, ErrNotFound
		}
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

// Cached is a copy of an object the caller believes current, with the
// revision that wrote it: a first try that saves a read from etcd. A stale
// one only costs a conflict and a fresh read.
type Cached struct {
	Object   kinds.Object
	Revision int64
}

// Change is what a GuaranteedUpdate mutation decides for the object it
// was given. The zero Change leaves the object as it is.
type Change struct {
	// Object is the object to store; with Delete, the object as it goes;
	// nil when nothing changes.
	Object kinds.Object
	// Delete removes the key instead of storing Object, and SideKeys with
	// it in the same transaction.
	Delete   bool
	SideKeys []string
}

// UpdateOption adjusts one GuaranteedUpdate.
type UpdateOption func(*updateOptions)

type updateOptions struct {
	dryRun bool
}

// DryRun, when on, runs the mutation on the current object and returns
// its result without writing anything.
func DryRun(on bool) UpdateOption {
	return func(o *updateOptions) { o.dryRun = on }
}

// GuaranteedUpdate reads the object at key, applies mutate, and writes the
// result (or deletes the object, if the Change says so), retrying on
// conflicts; it returns the object and the revision of the write. mutate
// gets a fresh copy each try, which it may modify and return, and returns
// an error to stop; the error comes back unwrapped. The zero Change writes
// nothing and returns the object (unmodified by mutate) at its current
// revision.
//
// hint, when not nil, is tried first. The hint may lag behind etcd, so
// only a write settles an answer computed on it: an error or a no-op from
// the hint is checked against a fresh read, and only that one is final,
// so a caller never sees a stale precondition failure or a stale object.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, newObj func() kinds.Object, hint *Cached,
	mutate func(cur kinds.Object, rev int64) (Change, error), opts ...UpdateOption) (kinds.Object, int64, error) {
	var o updateOptions
	for _, opt := range opts {
		opt(&o)
	}
	for {
		var cur kinds.Object
		var rev int64
		fromHint := hint != nil
		if fromHint {
			cur, rev = proto.Clone(hint.Object).(kinds.Object), hint.Revision
			hint = nil
		} else {
			cur = newObj()
			var err error
			if rev, err = s.Get(ctx, key, cur); err != nil {
				return nil, 0, err
			}
		}
		change, err := mutate(cur, rev)
		if err != nil {
			if fromHint {
				continue
			}
			return nil, 0, err
		}
		if change.Object == nil {
			if fromHint {
				continue
			}
			return cur, rev, nil
		}
		if o.dryRun {
			return change.Object, rev, nil
		}
		var newRev int64
		if change.Delete {
			newRev, err = s.Delete(ctx, key, rev, change.SideKeys...)
		} else {
			var data []byte
			if data, err = Encode(change.Object); err != nil {
				return nil, 0, err
			}
			newRev, err = s.Update(ctx, key, rev, data)
		}
		if errors.Is(err, ErrConflict) {
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return change.Object, newRev, nil
	}
}

// FormatRevision is a revision as a resourceVersion string.
func FormatRevision(rev int64) string { return strconv.FormatInt(rev, 10) }
