package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"
)

// SessionKeys is a KeySource of temporary access keys, kept in memory in
// front of another KeySource (StoreKeys): the credentials a custom rotation
// function gets for one step. A session key authenticates a principal
// whose only identity policy is the one it was issued with, until it is
// revoked or expires. They are never stored, so they work only on the node
// that issued them (the one running the step, which hands the function its
// own address).
type SessionKeys struct {
	next KeySource
	now  func() time.Time

	mu   sync.RWMutex
	keys map[string]session
}

type session struct {
	secret  string
	p       Principal
	expires time.Time
}

// NewSessionKeys returns SessionKeys in front of next.
func NewSessionKeys(next KeySource) *SessionKeys {
	return &SessionKeys{next: next, now: time.Now, keys: make(map[string]session)}
}

// SessionKeyPrefix starts every session key id, as AWS's temporary keys
// start with ASIA.
const SessionKeyPrefix = "ASIA"

// SecretKey implements KeySource: a live session key, else next's answer.
func (k *SessionKeys) SecretKey(ctx context.Context, id string) (string, Principal, error) {
	k.mu.RLock()
	s, ok := k.keys[id]
	k.mu.RUnlock()
	if !ok {
		return k.next.SecretKey(ctx, id)
	}
	if !k.now().Before(s.expires) {
		k.revoke(id)
		return "", Principal{}, ErrUnknownKey
	}
	return s.secret, s.p, nil
}

// Issue makes a session key for principalARN with policy (a JSON identity
// policy document) as its only permissions, valid for ttl or until revoke
// is called.
func (k *SessionKeys) Issue(principalARN, policy string, ttl time.Duration) (id, secret string, revoke func(), err error) {
	if principalARN == "" || policy == "" || ttl <= 0 {
		return "", "", nil, errors.New("auth: a session needs a principal, a policy and a lifetime")
	}
	var b [10 + 30]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", nil, fmt.Errorf("generate session key: %w", err)
	}
	id = SessionKeyPrefix + base32.StdEncoding.EncodeToString(b[:10])
	secret = base64.StdEncoding.EncodeToString(b[10:])
	clear(b[:])
	k.mu.Lock()
	k.keys[id] = session{secret: secret, expires: k.now().Add(ttl),
		p: Principal{ARN: principalARN, AccessKeyID: id, SessionPolicy: policy}}
	k.mu.Unlock()
	return id, secret, func() { k.revoke(id) }, nil
}

func (k *SessionKeys) revoke(id string) {
	k.mu.Lock()
	delete(k.keys, id)
	k.mu.Unlock()
}

// Live counts the session keys not yet revoked (expired ones included
// until their next use).
func (k *SessionKeys) Live() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}
