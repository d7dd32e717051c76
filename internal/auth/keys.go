package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotor-secrets/rotor/internal/arn"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Access key ids are 16 to 128 word characters, as in IAM.
const (
	minKeyIDLen = 16
	maxKeyIDLen = 128
)

// StoreKeys is the KeySource of a Rotor server: access keys live in the store
// with their secret half sealed by the keyring, bound to the key id.
//
// Decrypted secrets are cached in memory, so only the first request with a
// key reads the store and decrypts. Put updates the cache of the StoreKeys it
// is called on at once. Changes made through another StoreKeys (another
// Rotor node on a shared store) are seen through Forget, or, with
// FollowVersion, before the next use of the cache.
//
// A StoreKeys is safe for concurrent use.
type StoreKeys struct {
	st    store.Store
	kr    *keyring.Keyring
	now   func() time.Time
	cache sync.Map   // access key id → *cachedKey
	putMu sync.Mutex // orders changes so that the cache ends as the store does
	// gen counts changes, each counted after its write committed; a read
	// of the store caches its result only if no change was counted while
	// it ran, so a deactivation or deletion is never overwritten by a read
	// that saw the key before it. fillMu makes a read's check-and-cache and
	// a change's count-and-update atomic with respect to each other.
	gen    atomic.Uint64
	fillMu sync.Mutex

	version func(context.Context) (uint64, error) // FollowVersion's; nil: none
	seen    atomic.Uint64                         // the version the cache holds
}

type cachedKey struct {
	secret string
	p      Principal
	active bool
}

// NewStoreKeys returns a KeySource over st whose secrets kr seals.
func NewStoreKeys(st store.Store, kr *keyring.Keyring) *StoreKeys {
	return &StoreKeys{st: st, kr: kr, now: time.Now}
}

// SecretKey implements KeySource. It returns ErrUnknownKey when the store has
// no key with this id or the key is inactive. A store failure or a secret
// the keyring cannot open (keyring.ErrDecrypt: a wrong master key, a row
// moved to another id) is returned wrapped.
func (k *StoreKeys) SecretKey(ctx context.Context, id string) (string, Principal, error) {
	if k.version != nil {
		v, err := k.version(ctx)
		if err != nil {
			return "", Principal{}, fmt.Errorf("check access key cache: %w", err)
		}
		if k.seen.Load() != v {
			k.Forget()
			k.seen.Store(v)
		}
	}
	if e, ok := k.cache.Load(id); ok {
		return e.(*cachedKey).result()
	}
	if id == "" || len(id) > maxKeyIDLen {
		return "", Principal{}, ErrUnknownKey // not worth a store read
	}
	gen := k.gen.Load()
	var ak store.AccessKey
	err := k.st.Read(ctx, func(tx store.Tx) error {
		var err error
		ak, err = tx.AccessKey(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", Principal{}, ErrUnknownKey
	}
	if err != nil {
		return "", Principal{}, fmt.Errorf("read access key %q: %w", id, err)
	}
	secret, err := k.kr.Open(ak.SealedSecret, keyAAD(id))
	if err != nil {
		return "", Principal{}, fmt.Errorf("open access key %q: %w", id, err)
	}
	e := newCachedKey(id, string(secret), ak.PrincipalARN, ak.Active)
	k.fillMu.Lock()
	defer k.fillMu.Unlock()
	if k.gen.Load() != gen {
		return e.result() // a change raced with this read: do not cache what it saw
	}
	k.cache.Store(id, e)
	return e.result()
}

// Put creates or replaces the access key id with its secret sealed, and
// makes the change visible to this StoreKeys' SecretKey at once. Replacing
// a key keeps its creation time. id must be 16 to 128 characters of
// [A-Za-z0-9_]; principalARN must be an IAM ARN
// (arn:aws:iam::ACCOUNT:root or arn:aws:iam::ACCOUNT:user/NAME).
func (k *StoreKeys) Put(ctx context.Context, id, secret, principalARN string, active bool) error {
	if !validKeyID(id) {
		return fmt.Errorf("access key id %q: want %d to %d characters of [A-Za-z0-9_]", id, minKeyIDLen, maxKeyIDLen)
	}
	if secret == "" {
		return fmt.Errorf("access key %s: empty secret", id)
	}
	if a, ok := arn.Parse(principalARN); !ok || a.Service != "iam" || a.Account == "" || a.Resource == "" {
		return fmt.Errorf("access key %s: principal %q is not an IAM ARN", id, principalARN)
	}
	sealed, _, err := k.kr.Seal([]byte(secret), keyAAD(id))
	if err != nil {
		return fmt.Errorf("seal access key %s: %w", id, err)
	}

	k.putMu.Lock()
	defer k.putMu.Unlock()
	now := k.now().UTC()
	err = k.st.Write(ctx, func(tx store.Tx) error {
		created := now
		old, err := tx.AccessKey(ctx, id)
		switch {
		case err == nil:
			created = old.CreatedAt
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return tx.PutAccessKey(ctx, store.AccessKey{
			ID:           id,
			SealedSecret: sealed,
			PrincipalARN: principalARN,
			Active:       active,
			CreatedAt:    created,
		})
	})
	if err != nil {
		// The write may have committed all the same; read it afresh next time.
		k.changed(id, nil)
		return fmt.Errorf("put access key %s: %w", id, err)
	}
	k.changed(id, newCachedKey(id, secret, principalARN, active))
	return nil
}

func newCachedKey(id, secret, principalARN string, active bool) *cachedKey {
	if !active {
		secret = "" // no reason to hold it
	}
	return &cachedKey{
		secret: secret,
		p:      Principal{ARN: principalARN, AccessKeyID: id, Root: strings.HasSuffix(principalARN, ":root")},
		active: active,
	}
}

func (e *cachedKey) result() (string, Principal, error) {
	if !e.active {
		return "", Principal{}, ErrUnknownKey
	}
	return e.secret, e.p, nil
}

// keyAAD binds a sealed secret to its access key id.
func keyAAD(id string) []byte { return []byte("rotor/access-key/" + id) }

func validKeyID(id string) bool {
	if len(id) < minKeyIDLen || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// GenerateKeyPair returns a new access key: an id of "AKRT" and 16
// characters of [A-Z2-7] (80 random bits), and a 40-character base64 secret
// (240 random bits), both from crypto/rand.
func GenerateKeyPair() (id, secret string, err error) {
	var b [10 + 30]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generate access key: %w", err)
	}
	id = "AKRT" + base32.StdEncoding.EncodeToString(b[:10])
	secret = base64.StdEncoding.EncodeToString(b[10:])
	clear(b[:])
	return id, secret, nil
}

// SetActive activates or deactivates the access key id and makes the change
// visible to this StoreKeys' SecretKey at once. ErrUnknownKey if no such
// key exists.
func (k *StoreKeys) SetActive(ctx context.Context, id string, active bool) error {
	k.putMu.Lock()
	defer k.putMu.Unlock()
	err := k.st.Write(ctx, func(tx store.Tx) error {
		ak, err := tx.AccessKey(ctx, id)
		if err != nil {
			return err
		}
		ak.Active = active
		return tx.PutAccessKey(ctx, ak)
	})
	// Read the key afresh on its next use, whatever happened.
	k.changed(id, nil)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownKey
	}
	if err != nil {
		return fmt.Errorf("set access key %s active=%v: %w", id, active, err)
	}
	return nil
}

// Delete removes the access key id; requests signed with it fail at once
// on this StoreKeys. ErrUnknownKey if no such key exists.
func (k *StoreKeys) Delete(ctx context.Context, id string) error {
	k.putMu.Lock()
	defer k.putMu.Unlock()
	err := k.st.Write(ctx, func(tx store.Tx) error { return tx.DeleteAccessKey(ctx, id) })
	k.changed(id, nil)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownKey
	}
	if err != nil {
		return fmt.Errorf("delete access key %s: %w", id, err)
	}
	return nil
}

// FollowVersion makes SecretKey call version before it uses the cache and
// drop the cache when the result changed: version counts the committed
// changes of keys by every node (store.TopicVersions). Call it before use.
func (k *StoreKeys) FollowVersion(version func(context.Context) (uint64, error)) {
	k.version = version
}

// Forget drops every cached key, so that the next request with each reads
// the store again: for changes made by another node.
func (k *StoreKeys) Forget() {
	k.fillMu.Lock()
	defer k.fillMu.Unlock()
	k.gen.Add(1)
	k.cache.Clear()
}

// changed records a committed change of key id: e is its new cache entry,
// nil to read it afresh on its next use.
func (k *StoreKeys) changed(id string, e *cachedKey) {
	k.fillMu.Lock()
	defer k.fillMu.Unlock()
	k.gen.Add(1)
	if e == nil {
		k.cache.Delete(id)
	} else {
		k.cache.Store(id, e)
	}
}
