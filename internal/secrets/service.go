// Package secrets is Rotor's domain service: secrets, versions, staging
// labels, idempotency tokens, deletion windows, tags and resource policies,
// with AWS Secrets Manager's semantics and limits. It knows nothing of HTTP
// or JSON.
//
// Callers construct one Service with New and call its methods, one per AWS
// operation, from any number of goroutines. Every method takes the caller's
// context first and returns either its result or an *Error whose Kind
// internal/awsapi maps to an AWS error code; Error.Msg never contains a
// secret value.
//
// Values are sealed by the keyring before they reach the store, with the
// secret ARN and version id as additional data.
package secrets

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Config wires a Service.
type Config struct {
	Region    string
	AccountID string
	Store     store.Store
	Keyring   *keyring.Keyring
	// KMSKeys resolves the KmsKeyId of CreateSecret and UpdateSecret to a
	// named key (a keyring family). Nil: only the default key exists.
	KMSKeys KMSKeys
	// CheckPolicy parses a resource policy document: err (shown to the
	// client) when its syntax is wrong, public when it grants access to
	// everyone. Nil accepts any JSON object as non-public.
	CheckPolicy func(doc string) (public bool, err error)
	// Authorize decides whether the caller of the request ctx belongs to may
	// make an Access: nil allows, an error made with AccessDenied refuses
	// (AccessDeniedException), any other error is an internal failure. Nil
	// allows everything (tests, and servers without access control).
	Authorize func(ctx context.Context, a *Access) error
	// Functions says which rotation functions exist (RotateSecret refuses
	// others with AccessDeniedException, as AWS refuses a Lambda it cannot
	// invoke). Nil: none.
	Functions interface{ Has(name string) bool }
	// Planner validates rotation rules and computes the next rotation.
	Planner rotation.Planner
	// Kick tells the rotation engine that work is due now. Nil: no-op.
	Kick func()
	// Recorder receives RotationAbandoned events. Nil: none.
	Recorder rotation.Recorder
	// OnLabelChange receives the staging labels a call moved — attached,
	// moved or removed, side effects included (AWSPREVIOUS, an abandoned
	// AWSPENDING, a deleted secret's labels) — each (secret, label) once
	// with its net move, in the order the call made them. It is called
	// after the call's transaction committed, on the caller's goroutine
	// before the method returns, so it must not block; never for a call
	// that failed. The changes carry no value. Nil: not reported.
	OnLabelChange func(ctx context.Context, changes []events.LabelChange)
	// CacheVersion, when set, is what GetSecretValue's read cache keys on
	// instead of the store's generation: a count that grows with every
	// committed change of what it caches — secrets, versions, labels and
	// the keys that seal them — by any process. Nil: store.Generations.
	CacheVersion func(ctx context.Context) (uint64, error)

	Now    func() time.Time // defaults to time.Now
	Rand   io.Reader        // defaults to crypto/rand
	Logger *slog.Logger
}

// KMSKeys finds named keys (internal/keys implements it).
type KMSKeys interface {
	// LookupKMSKey finds the key id names: a key id, a key ARN, an alias
	// (alias/NAME) or an alias ARN. found is false when there is none. The
	// default key (alias/aws/secretsmanager) has ID "".
	LookupKMSKey(ctx context.Context, id string) (k KMSKey, found bool, err error)
}

// KMSKey is a named key: its id is the keyring family its secrets'
// values are sealed in.
type KMSKey struct {
	ID  string
	ARN string
}

// Service implements the operations. It is safe for concurrent use.
type Service struct {
	cfg   Config
	reads readCache
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Kick == nil {
		cfg.Kick = func() {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg}
}
