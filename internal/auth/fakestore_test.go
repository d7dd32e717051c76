package auth

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/rotor-secrets/rotor/internal/store"
)

// fakeStore is an in-memory store.Store holding access keys only; the store
// is not under test here. Calling a Tx method other than AccessKey and
// PutAccessKey panics (nil embedded interface).
type fakeStore struct {
	mu      sync.RWMutex
	keys    map[string]store.AccessKey
	reads   atomic.Int64 // Read transactions run
	readErr error        // when set, Read fails with it
}

func newFakeStore() *fakeStore { return &fakeStore{keys: make(map[string]store.AccessKey)} }

func (s *fakeStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	s.reads.Add(1)
	if s.readErr != nil {
		return s.readErr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(&fakeTx{keys: s.keys})
}

func (s *fakeStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &fakeTx{keys: maps.Clone(s.keys), write: true}
	if err := fn(tx); err != nil {
		return err
	}
	s.keys = tx.keys
	return nil
}

func (s *fakeStore) Ping(context.Context) error { return nil }
func (s *fakeStore) Close() error               { return nil }

// row returns the stored access key, bypassing any cache.
func (s *fakeStore) row(id string) (store.AccessKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[id]
	return k, ok
}

type fakeTx struct {
	store.Tx
	keys  map[string]store.AccessKey
	write bool
}

func (tx *fakeTx) AccessKey(_ context.Context, id string) (store.AccessKey, error) {
	k, ok := tx.keys[id]
	if !ok {
		return store.AccessKey{}, store.ErrNotFound
	}
	k.SealedSecret = append([]byte(nil), k.SealedSecret...)
	return k, nil
}

func (tx *fakeTx) PutAccessKey(_ context.Context, k store.AccessKey) error {
	if !tx.write {
		panic("fakestore: PutAccessKey in a read transaction")
	}
	k.SealedSecret = append([]byte(nil), k.SealedSecret...)
	tx.keys[k.ID] = k
	return nil
}
