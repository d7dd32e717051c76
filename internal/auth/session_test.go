package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// staticKeys is a KeySource of one key.
type staticKeys struct{ id, secret string }

func (s staticKeys) SecretKey(_ context.Context, id string) (string, Principal, error) {
	if id != s.id {
		return "", Principal{}, ErrUnknownKey
	}
	return s.secret, Principal{ARN: "arn:aws:iam::000000000000:root", AccessKeyID: id, Root: true}, nil
}

func TestSessionKeys(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	k := NewSessionKeys(staticKeys{"AKRTROOTROOTROOT0001", "root-secret"})
	k.now = func() time.Time { return now }
	ctx := t.Context()

	// The keys behind are still served.
	if secret, p, err := k.SecretKey(ctx, "AKRTROOTROOTROOT0001"); err != nil || secret != "root-secret" || !p.Root {
		t.Fatalf("the store's key: %q %+v %v", secret, p, err)
	}
	const doc = `{"Version":"2012-10-17","Statement":[]}`
	id, secret, revoke, err := k.Issue("arn:aws:sts::000000000000:assumed-role/r/f", doc, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, SessionKeyPrefix) || len(id) != 20 || len(secret) != 40 {
		t.Errorf("session key %q / secret of %d characters", id, len(secret))
	}
	got, p, err := k.SecretKey(ctx, id)
	if err != nil || got != secret || p.ARN != "arn:aws:sts::000000000000:assumed-role/r/f" || p.SessionPolicy != doc || p.Root || p.AccessKeyID != id {
		t.Fatalf("session key: %q %+v %v", got, p, err)
	}
	// Revoked: unknown at once.
	revoke()
	if _, _, err := k.SecretKey(ctx, id); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("revoked key: %v, want ErrUnknownKey", err)
	}
	// Expired: unknown, and forgotten.
	id2, _, _, err := k.Issue("arn:aws:sts::000000000000:assumed-role/r/f", doc, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, _, err := k.SecretKey(ctx, id2); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("expired key: %v, want ErrUnknownKey", err)
	}
	if n := k.Live(); n != 0 {
		t.Errorf("%d session keys kept after revocation and expiry", n)
	}
	if _, _, _, err := k.Issue("", doc, time.Minute); err == nil {
		t.Error("a session without a principal was issued")
	}
}
