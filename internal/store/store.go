// Package store is Rotor's storage interface: secrets, their versions and
// staging labels, users, managed policies and access keys, the webhook
// outbox and a small metadata table.
//
// The store only ever sees ciphertext (Version.Sealed, AccessKey.SealedSecret)
// and never interprets the secrets domain: it does not move labels, validate
// names or enforce AWS limits. That logic lives in internal/secrets, which
// drives a Store through transactions.
//
// Concurrency: Read runs fn on a consistent snapshot and may run in parallel
// with other Reads and with one Write. Write transactions are serialised
// (one at a time per store); fn's changes commit atomically if it returns nil
// and are rolled back otherwise. fn may be called more than once if the
// backend must retry a conflicting transaction, so it must not have side
// effects outside the Tx.
//
// Errors: ErrNotFound when a looked-up or written row does not exist
// (UpdateVersion, DeleteVersion, DeleteSecret of a missing row; CreateVersion
// or SetStage naming a missing secret or version); ErrConflict when a write
// violates uniqueness (a secret name or ARN, a version id within its
// secret — the same id may exist on two secrets). A write that fails with
// either leaves the transaction usable, since the domain handles them inside
// a transaction and carries on. A panic in fn rolls back and propagates.
//
// Names, ARNs and labels compare byte-wise in lookups and in list order. A
// Tx is not safe for concurrent use and is dead once fn returns; fn must not
// start another transaction. Every backend passes the conformance suite in
// store/storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by lookups of a secret, version, label, access key
// or metadata key that does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a write would violate uniqueness: a secret
// whose name or ARN is taken, a version id that already exists.
var ErrConflict = errors.New("store: conflict")

// Store is a storage backend.
type Store interface {
	// Read runs fn in a read-only transaction. Calling a write method of tx
	// returns an error.
	Read(ctx context.Context, fn func(tx Tx) error) error
	// Write runs fn in a serialised read-write transaction.
	Write(ctx context.Context, fn func(tx Tx) error) error
	// Ping checks that the store is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases the store; it waits for running transactions.
	Close() error
}

// Generations is implemented by a Store that can tell cheaply whether
// anything was written since an earlier moment: Generation returns a
// number, never 0, that grows with every committed Write — of any process
// sharing the store — before that Write returns. Callers use it to keep
// read caches: an entry read at generation g is current while Generation
// still returns g. On an error, cache nothing.
type Generations interface {
	Generation(ctx context.Context) (uint64, error)
}

// Tx is one transaction. Times are stored with at least millisecond
// precision and returned in UTC.
type Tx interface {
	// Secret returns the secret with this full ARN.
	Secret(ctx context.Context, arn string) (Secret, error)
	// SecretByName returns the secret with this name (names are unique
	// among all stored secrets, including those scheduled for deletion).
	SecretByName(ctx context.Context, name string) (Secret, error)
	// ListSecrets returns up to q.Limit secrets in q's order, starting
	// strictly after q.After when it is set.
	ListSecrets(ctx context.Context, q ListQuery) ([]Secret, error)
	// CreateSecret inserts a new secret; ErrConflict if its name or ARN exists.
	CreateSecret(ctx context.Context, s Secret) error
	// UpdateSecret replaces every field of the secret with s.ARN.
	// ErrNotFound if it does not exist; ErrConflict if the new name is taken.
	UpdateSecret(ctx context.Context, s Secret) error
	// DeleteSecret removes the secret, its versions and its labels.
	DeleteSecret(ctx context.Context, arn string) error
	// DeletedBefore returns the ARNs (at most limit) of secrets whose
	// DeletionDate is set and not after t.
	DeletedBefore(ctx context.Context, t time.Time, limit int) ([]string, error)
	// RotationsDue returns the ARNs (at most limit, earliest first) of
	// secrets whose Rotation.WakeAt is set and not after t.
	RotationsDue(ctx context.Context, t time.Time, limit int) ([]string, error)

	// SecretStats counts secrets by state at time now (for metrics).
	SecretStats(ctx context.Context, now time.Time) (SecretStats, error)

	// Versions returns every version of the secret, oldest first, with
	// Stages filled and without Sealed (metadata only).
	Versions(ctx context.Context, arn string) ([]Version, error)
	// VersionCount returns how many versions the secret has.
	VersionCount(ctx context.Context, arn string) (int, error)
	// Version returns one version with its Sealed value and Stages.
	Version(ctx context.Context, arn, versionID string) (Version, error)
	// VersionByStage returns the version carrying the staging label, with
	// its Sealed value and Stages; ErrNotFound if no version carries it.
	VersionByStage(ctx context.Context, arn, stage string) (Version, error)
	// CreateVersion inserts a version (its Stages are ignored; labels are
	// set with SetStage). ErrConflict if the version id exists.
	CreateVersion(ctx context.Context, v Version) error
	// UpdateVersion rewrites Sealed, KeyID, Binary and LastAccessedAt of an
	// existing version (filling a placeholder, re-wrapping, access time).
	UpdateVersion(ctx context.Context, v Version) error
	// DeleteVersion removes a version and any labels on it.
	DeleteVersion(ctx context.Context, arn, versionID string) error
	// SetStage attaches the label to versionID, detaching it from whichever
	// version of the same secret held it.
	SetStage(ctx context.Context, arn, stage, versionID string) error
	// RemoveStage detaches the label from the secret's versions (no error if
	// no version held it).
	RemoveStage(ctx context.Context, arn, stage string) error

	// AccessKey returns the access key with this id.
	AccessKey(ctx context.Context, id string) (AccessKey, error)
	// PutAccessKey inserts or replaces an access key.
	PutAccessKey(ctx context.Context, k AccessKey) error
	// AccessKeysOf returns the access keys of a principal, by id.
	AccessKeysOf(ctx context.Context, principalARN string) ([]AccessKey, error)
	// DeleteAccessKey removes an access key; ErrNotFound if it does not exist.
	DeleteAccessKey(ctx context.Context, id string) error

	// User returns the user with this name.
	User(ctx context.Context, name string) (User, error)
	// CreateUser inserts a user; ErrConflict if the name or ARN exists.
	CreateUser(ctx context.Context, u User) error
	// DeleteUser removes a user and its policy attachments (not its access
	// keys); ErrNotFound if it does not exist.
	DeleteUser(ctx context.Context, name string) error
	// ListUsers returns up to limit users by name, strictly after after.
	ListUsers(ctx context.Context, after string, limit int) ([]User, error)

	// Policy returns the managed policy with this name.
	Policy(ctx context.Context, name string) (Policy, error)
	// CreatePolicy inserts a policy; ErrConflict if the name or ARN exists.
	CreatePolicy(ctx context.Context, p Policy) error
	// UpdatePolicy replaces the document, description and UpdatedAt of an
	// existing policy; ErrNotFound if it does not exist.
	UpdatePolicy(ctx context.Context, p Policy) error
	// DeletePolicy removes a policy and its attachments; ErrNotFound if it
	// does not exist.
	DeletePolicy(ctx context.Context, name string) error
	// ListPolicies returns up to limit policies by name, strictly after after.
	ListPolicies(ctx context.Context, after string, limit int) ([]Policy, error)
	// AttachUserPolicy attaches a policy to a user (no error if it is
	// attached already); ErrNotFound if either does not exist.
	AttachUserPolicy(ctx context.Context, user, policy string) error
	// DetachUserPolicy detaches a policy from a user; ErrNotFound if it was
	// not attached.
	DetachUserPolicy(ctx context.Context, user, policy string) error
	// UserPolicies returns the policies attached to a user, by name.
	UserPolicies(ctx context.Context, user string) ([]Policy, error)
	// PolicyUsers returns the names of the users a policy is attached to.
	PolicyUsers(ctx context.Context, policy string) ([]string, error)

	// AddOutbox appends events to the outbox; it assigns each its Seq.
	AddOutbox(ctx context.Context, entries []OutboxEntry) error
	// OutboxDue returns up to limit entries that are not parked and whose
	// NextAttemptAt is not after t, earliest first.
	OutboxDue(ctx context.Context, t time.Time, limit int) ([]OutboxEntry, error)
	// UpdateOutbox rewrites Attempts, NextAttemptAt, Parked and LastError of
	// an entry; ErrNotFound if it does not exist.
	UpdateOutbox(ctx context.Context, e OutboxEntry) error
	// DeleteOutbox removes an entry (delivered); ErrNotFound if it does not
	// exist.
	DeleteOutbox(ctx context.Context, seq int64) error
	// ListOutbox returns up to limit entries with Seq > after, in Seq order:
	// the parked ones when parked is true, the pending ones otherwise.
	ListOutbox(ctx context.Context, parked bool, after int64, limit int) ([]OutboxEntry, error)
	// OutboxCounts returns how many entries are pending and parked.
	OutboxCounts(ctx context.Context) (pending, parked int, err error)

	// AllAccessKeys returns up to limit access keys by id, strictly after
	// after (every principal's), for re-wrapping their sealed secrets.
	AllAccessKeys(ctx context.Context, after string, limit int) ([]AccessKey, error)

	// MasterKeys returns every master key version, oldest first (by
	// CreatedAt, then ID).
	MasterKeys(ctx context.Context) ([]MasterKeyVersion, error)
	// PutMasterKey inserts or replaces a master key version.
	PutMasterKey(ctx context.Context, k MasterKeyVersion) error
	// SealedVersionsNotUnder returns up to limit versions that have a value
	// (Sealed not nil) whose KeyID is not keyID, ordered by (SecretARN,
	// VersionID) byte-wise and starting strictly after (afterARN,
	// afterVersionID): a resumable scan for re-wrapping. Stages are not
	// filled.
	SealedVersionsNotUnder(ctx context.Context, keyID, afterARN, afterVersionID string, limit int) ([]Version, error)
	// SealedVersionsNotUnderAny is SealedVersionsNotUnder for versions
	// whose KeyID is none of keyIDs (the current version of every key
	// family).
	SealedVersionsNotUnderAny(ctx context.Context, keyIDs []string, afterARN, afterVersionID string, limit int) ([]Version, error)
	// KeyUsage counts the versions that have a value by KeyID.
	KeyUsage(ctx context.Context) (map[string]int, error)

	// KMSKeys returns every named KMS key, oldest first (by CreatedAt,
	// then ID).
	KMSKeys(ctx context.Context) ([]KMSKey, error)
	// PutKMSKey inserts or replaces a named KMS key; ErrConflict if its
	// Alias (when not "") is another key's.
	PutKMSKey(ctx context.Context, k KMSKey) error

	// Meta returns a value from the metadata table (schema facts, key
	// checks); ErrNotFound if the key is absent.
	Meta(ctx context.Context, key string) (string, error)
	// PutMeta inserts or replaces a metadata value: any bytes (sealed
	// envelopes are kept there), not only UTF-8.
	PutMeta(ctx context.Context, key, value string) error
}

// Secret is a secret's metadata. Values live in its versions.
type Secret struct {
	ARN            string
	Name           string
	Description    string
	KMSKeyID       string
	Tags           []Tag  // in insertion order; keys unique
	ResourcePolicy string // JSON document, "" when none
	CreatedAt      time.Time
	LastChangedAt  time.Time
	LastAccessedAt time.Time // zero if never read
	DeletedAt      time.Time // zero unless scheduled for deletion
	DeletionDate   time.Time // when a scheduled deletion becomes final
	Rotation       Rotation
}

// Tag is a secret's key/value tag.
type Tag struct {
	Key   string
	Value string
}

// Rotation is a secret's rotation configuration and progress. The store
// keeps RulesJSON and StateJSON opaque.
type Rotation struct {
	Configured     bool // false until rotation was first configured (RotationEnabled absent)
	Enabled        bool
	LambdaARN      string
	RulesJSON      string
	LastRotatedAt  time.Time
	NextRotationAt time.Time
	StateJSON      string // the rotation engine's progress record
	// WakeAt is when the rotation engine must next look at the secret (a
	// scheduled rotation or a retry); zero when it has nothing to do.
	WakeAt time.Time
}

// Version is one version of a secret's value.
type Version struct {
	SecretARN      string
	VersionID      string
	Stages         []string // filled on reads; sorted
	CreatedAt      time.Time
	LastAccessedAt time.Time
	// Sealed is the encrypted value (keyring format). Nil for a
	// placeholder version that has a label but no value yet.
	Sealed []byte
	// KeyID names the master key that wraps Sealed's data key.
	KeyID string
	// Binary reports whether the value was given as SecretBinary.
	Binary bool
}

// SortBy is the order of ListSecrets.
type SortBy string

// The orders ListSecrets supports. Ties are broken by ARN.
const (
	SortByCreated      SortBy = "created-date"
	SortByName         SortBy = "name"
	SortByLastChanged  SortBy = "last-changed-date"
	SortByLastAccessed SortBy = "last-accessed-date"
)

// ListQuery selects a page of secrets for keyset pagination.
type ListQuery struct {
	SortBy         SortBy
	Descending     bool
	After          *Cursor // start strictly after this position
	IncludeDeleted bool    // include secrets scheduled for deletion
	Limit          int     // at most this many rows (> 0)
}

// Cursor is a position in a ListSecrets order: the sort key of the last row
// returned and its ARN.
type Cursor struct {
	Name string    // used with SortByName
	Time time.Time // used with the date orders (zero sorts first)
	ARN  string
}

// AccessKey is an access key pair; the secret half is sealed by the keyring.
type AccessKey struct {
	ID           string
	SealedSecret []byte
	PrincipalARN string
	Active       bool
	CreatedAt    time.Time
}

// MasterKeyVersion is one version of the master key, stored wrapped by the
// root key (internal/keys). The store keeps Wrapped opaque.
type MasterKeyVersion struct {
	ID string
	// Wrapped is the key material wrapped by the root key; nil for the root
	// key itself (which lives outside the store) and once destroyed.
	Wrapped   []byte
	State     KeyState
	CreatedAt time.Time // zero for the root key
	RetiredAt time.Time // zero unless retired or destroyed
	// Family is the KMSKey.ID the version belongs to; "" for the default
	// key (alias/aws/secretsmanager). Each family has at most one current
	// version.
	Family string
}

// KMSKey is a named key (internal/keys): a family of master key versions
// that secrets select with KmsKeyId.
type KMSKey struct {
	ID          string // a UUID
	Alias       string // "alias/…", unique; "" when none
	Description string
	Enabled     bool
	CreatedAt   time.Time
}

// KeyState is a master key version's life-cycle state.
type KeyState string

// The states of a master key version: exactly one is current (new data
// keys are wrapped with it); retired ones still open what they wrapped
// until it is re-wrapped; destroyed ones are gone.
const (
	KeyCurrent   KeyState = "current"
	KeyRetired   KeyState = "retired"
	KeyDestroyed KeyState = "destroyed"
)

// User is a principal other than root: arn:aws:iam::ACCOUNT:user/NAME.
type User struct {
	Name      string
	ARN       string
	ID        string // IAM-style unique id (AIDA…), never reused
	CreatedAt time.Time
}

// Policy is a managed identity policy, attachable to users.
type Policy struct {
	Name        string
	ARN         string // arn:aws:iam::ACCOUNT:policy/NAME
	ID          string // IAM-style unique id (ANPA…)
	Description string
	Document    string // the JSON policy document
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// OutboxEntry is one event waiting for delivery to one webhook.
type OutboxEntry struct {
	Seq           int64  // assigned by AddOutbox
	Target        string // the webhook it goes to
	EventID       string
	Body          string // the event's JSON; it carries no secret value
	CreatedAt     time.Time
	Attempts      int
	NextAttemptAt time.Time
	Parked        bool   // gave up after too many failures; kept for inspection
	LastError     string // why the last attempt failed
}

// SecretStats are counts of secrets by state.
type SecretStats struct {
	Live            int // not scheduled for deletion
	PendingDeletion int // scheduled for deletion
	RotationEnabled int // live, with rotation enabled
	// RotationOverdue counts live secrets with rotation enabled whose
	// NextRotationAt is set and before now.
	RotationOverdue int
}
