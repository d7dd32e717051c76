// Package client is Rotor's Go client side: a cache of secret values over
// aws-sdk-go-v2's Secrets Manager client, which works against Rotor and
// against AWS Secrets Manager alike.
//
// A Cache keeps the value of each secret's AWSCURRENT (or another stage) in
// memory: entries expire after a TTL with jitter, are refreshed ahead of
// expiry in the background, are fetched once for many concurrent misses,
// are bounded in number (least recently used go first), and are served stale
// for a bounded time when the service cannot be reached. Refresh is
// version-aware: DescribeSecret tells whether the stage moved, and the value
// is fetched (by VersionId) only when it did. RefreshNow and Invalidate let
// callers — database connectors after an authentication failure, or Rotor's
// push stream after a rotation — force the next read to the service.
//
// A Cache is safe for concurrent use. Close stops its background work; no
// goroutine outlives it.
package client

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// API is what the cache needs of the Secrets Manager client;
// *secretsmanager.Client implements it.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

// Config tunes a Cache. Zero fields take the defaults.
type Config struct {
	// TTL is how long a value is served before the cache checks it again
	// (default 5m). Each entry's TTL is drawn in [TTL·(1-Jitter), TTL].
	TTL time.Duration
	// Jitter is the fraction of TTL taken off at random (default 0.2) so
	// that many processes do not refresh in step. Negative: no jitter.
	Jitter float64
	// RefreshAhead is the fraction of an entry's TTL after which a read
	// triggers a background refresh while still answering from the cache
	// (default 0.75). Negative or 1 and above: no refresh ahead; reads
	// after the TTL wait for the service.
	RefreshAhead float64
	// MaxEntries bounds the cache (default 1024); the least recently used
	// entry is evicted.
	MaxEntries int
	// MaxStale bounds how long an expired value is served when refreshing
	// fails (default 15m); refresh attempts back off exponentially
	// meanwhile (1s, 2s, 4s … up to TTL). Errors saying the secret is gone
	// (not found, marked for deletion, access denied) are never covered by
	// a stale value. Negative: never serve an expired value.
	MaxStale time.Duration
	// Now is the clock (default time.Now); tests inject one. It is called
	// on every read, so it must be cheap and safe for concurrent use.
	Now func() time.Time
	// Logger receives refresh failures (never values). Nil: discard.
	Logger *slog.Logger
}

// DefaultStage is the version stage Get reads.
const DefaultStage = "AWSCURRENT"

// Secret is one cached secret version. Its String method redacts the value.
type Secret struct {
	ARN           string
	Name          string
	VersionID     string
	VersionStages []string
	SecretString  string // "" when the secret is binary
	SecretBinary  []byte
	CreatedDate   time.Time
}

// String describes the secret without its value.
func (s *Secret) String() string {
	if s == nil {
		return "<nil>"
	}
	return "secret " + s.Name + " version " + s.VersionID + " [REDACTED]"
}
