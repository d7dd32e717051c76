package secrets

import (
	"context"
	"sync"

	"github.com/rotor-secrets/rotor/internal/store"
)

// readCache remembers what GetSecretValue last read from the store for a
// (SecretId, VersionId, VersionStage), so that the next request for it needs
// no store transaction. An entry is valid only while the store's generation
// (store.Generations), or Config.CacheVersion, is the one it was read at:
// any committed write anywhere in the store (or any change CacheVersion
// counts) invalidates every entry. With neither nothing is cached.
//
// Entries hold the secret's metadata and the version's sealed value, never
// a decrypted one; authorization and the deletion check run on every
// request, cached or not.
type readCache struct {
	mu      sync.RWMutex
	gen     uint64
	entries map[readKey]readEntry
}

type readKey struct {
	secretID, versionID, stage string
}

type readEntry struct {
	sec store.Secret
	ver store.Version
}

// maxReadCacheEntries bounds the cache; a full cache starts over.
const maxReadCacheEntries = 100_000

// get returns the current version — version's, else the store's
// generation — and the entry for k if it is valid at that version; gen is
// 0 (cache nothing) when there is none.
func (c *readCache) get(ctx context.Context, version func(context.Context) (uint64, error), st store.Store, k readKey) (gen uint64, e readEntry, hit bool) {
	if version == nil {
		g, ok := st.(store.Generations)
		if !ok {
			return 0, readEntry{}, false
		}
		version = g.Generation
	}
	gen, err := version(ctx)
	if err != nil || gen == 0 {
		return 0, readEntry{}, false
	}
	c.mu.RLock()
	if c.gen == gen {
		e, hit = c.entries[k]
	}
	c.mu.RUnlock()
	return gen, e, hit
}

// put stores what a read that started at generation gen found; it is
// dropped if the store has moved on since (gen is then older than the
// cache's).
func (c *readCache) put(gen uint64, k readKey, sec store.Secret, ver store.Version) {
	if gen == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen < c.gen:
		return
	case gen > c.gen || len(c.entries) >= maxReadCacheEntries:
		c.gen = gen
		c.entries = make(map[readKey]readEntry)
	}
	c.entries[k] = readEntry{sec: sec, ver: ver}
}
