// Package keys manages Rotor's master key versions: rotation, the
// background re-wrap of every data key, and status.
//
// Hierarchy. The root key (the data dir's master.key, or whatever
// keyring.Source supplies) wraps master key versions, which are stored in
// the store (store.MasterKeyVersion) under the root key with additional data
// "rotor/master-key/<id>". Each version wraps data keys (keyring envelopes),
// and each data key encrypts one value: a secret version, an access key's
// secret, or a sealed meta item (the key-check canary, the audit signing
// key). Until the first rotation the root key itself is the current master
// key (its id, mk-…, is what envelopes of older data dirs record), so no
// migration is needed.
//
// Key families. Named keys (kms.go), which secrets select with KmsKeyId,
// are families of versions beside the default key's (family ""): each has
// its own current version, and the keyring seals a secret's values in its
// key's family. Rotate, Status and the re-wrap work per family: an
// envelope is re-wrapped to its own family's current version, and a
// family's retired versions are destroyed once none of its envelopes uses
// them. Config.RotationInterval rotates due families from Run.
//
// Rotate creates a version, stores it wrapped and current in one Write, and
// only then makes the keyring seal with it: a crash in between leaves a
// stored current version that Open loads. Open must run before anything is
// sealed or opened with the keyring: it loads every version that is not
// destroyed, so no envelope is ever under a key the keyring lacks.
//
// Re-wrap. Run re-wraps, in batches of Config.BatchSize, every envelope not
// under its family's current version: secret versions in (ARN, version id) order,
// then access keys by id, then the meta items. Each batch is one store
// Write that reads the rows and re-wraps them in the same transaction, so a
// concurrent PutSecretValue (whose Write is serialised with it) is never
// lost and never fails; the batch's cursor is saved in the same Write (meta
// key CursorMeta), so after a crash the job resumes where it stopped. Only
// the data key is re-wrapped (keyring.Rewrap): the work per envelope does
// not depend on the value's size.
//
// After a pass, one Write counts the envelopes under each version. A
// retired version under which nothing remains, retired at least
// Config.Grace ago, is destroyed: its material is deleted from the store,
// and Config.Grace later (for reads of older snapshots still in flight) it
// is removed from the keyring. Envelopes still under a retired version
// start another pass. The grace also covers sealing outside a Write
// (auth.StoreKeys.Put seals an access key's secret just before its Write):
// such an envelope, wrapped with the version current a moment before a
// rotation, is counted in time. The root key can be retired and destroyed
// as a master key like any version, but it stays the root: it still wraps
// the versions, until RotateRoot (root.go) replaces it.
//
// A Service is safe for concurrent use. Run one Run per store.
package keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
)

// CursorMeta is the meta key of the re-wrap job's progress record.
const CursorMeta = "keys.rewrap"

// Defaults of Config.
const (
	DefaultBatchSize    = 500
	DefaultGrace        = time.Minute
	DefaultPollInterval = time.Minute
)

// MetaItem is a value sealed in the store's meta table, with the
// additional data it was sealed with.
type MetaItem struct {
	Key string
	AAD []byte
}

// Config configures a Service.
type Config struct {
	Store   store.Store
	Keyring *keyring.Keyring
	// Root wraps the stored versions; it is also a master key in Keyring
	// (the current one until the first rotation).
	Root keyring.MasterKey
	// Meta lists the sealed meta items to re-wrap.
	Meta []MetaItem
	// BatchSize is how many envelopes one re-wrap Write handles (default
	// DefaultBatchSize); BatchDelay is a pause between batches (default
	// none), to leave the store to requests or, in tests, to slow the job.
	BatchSize  int
	BatchDelay time.Duration
	// Grace is how long a retired version waits before it may be
	// destroyed, and a destroyed one before the keyring forgets it
	// (default DefaultGrace).
	Grace time.Duration
	// PollInterval is how often an idle Run looks for work (default
	// DefaultPollInterval); Rotate wakes it at once.
	PollInterval time.Duration
	// RotationInterval, when positive, rotates a key whose current version
	// is older (checked at every poll); the root key used as the default
	// key's master key counts as old. Disabled keys are not rotated.
	RotationInterval time.Duration
	// Region and AccountID make named keys' ARNs.
	Region    string
	AccountID string
	Now       func() time.Time
	Logger    *slog.Logger
}

// Version is one master key version as Status and Rotate report it.
type Version struct {
	ID        string
	State     store.KeyState
	CreatedAt time.Time // zero for the root key
	RetiredAt time.Time
	// Root marks the root key used as a master key.
	Root bool
	// Envelopes counts the data keys it wraps: secret versions, access
	// keys and meta items.
	Envelopes int
}

// Status is the state of the key hierarchy and of the re-wrap job.
type Status struct {
	Current string // the version new data keys are wrapped with
	Root    string // the root key's id
	// RootWraps counts the stored versions the root key wraps (not
	// destroyed).
	RootWraps int
	Versions  []Version // oldest first
	Rewrap    Progress
}

// Progress is the re-wrap job's.
type Progress struct {
	Pending int  // envelopes not under the current version
	Done    int  // envelopes re-wrapped since the current version became current
	Running bool // retired versions remain to be emptied or destroyed
}

// Service rotates master keys and runs the re-wrap job.
type Service struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex // serialises Rotate and the job's steps
	kick chan struct{}

	rmMu     sync.Mutex
	removals []removal // destroyed versions the keyring still holds

	rootMu sync.RWMutex
	rootMK keyring.MasterKey // Config.Root until RotateRoot replaces it
}

type removal struct {
	id string
	at time.Time
}

// cursor is the re-wrap job's progress, saved in meta (CursorMeta).
type cursor struct {
	Target    string // the version the pass re-wraps to
	Phase     string
	After     string `json:",omitempty"` // secret ARN or access key id
	AfterID   string `json:",omitempty"` // version id
	Done      int    // envelopes re-wrapped for Target
	Failed    int    `json:",omitempty"` // envelopes of this pass that did not open
	LastError string `json:",omitempty"`
}

const (
	phaseVersions   = "versions"
	phaseAccessKeys = "access-keys"
	phaseMeta       = "meta"
	phaseCheck      = "check"
	phaseIdle       = "idle"
)

// Open loads every stored version the keyring needs and makes the stored
// current version current. It fails when the root key does not open a
// stored version: the root key does not belong to the store.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keyring == nil {
		return nil, errors.New("keys: Store and Keyring are required")
	}
	if !cfg.Keyring.Has(cfg.Root.ID) {
		if err := cfg.Keyring.Add(cfg.Root); err != nil {
			return nil, err
		}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: log, kick: make(chan struct{}, 1), rootMK: cfg.Root}
	if err := s.sync(ctx, true); err != nil {
		return nil, err
	}
	return s, nil
}

// sync brings the keyring in line with the store: every version that is
// not destroyed is held, and the stored current one is current. At open,
// destroyed versions the keyring holds (the root key) are removed.
func (s *Service) sync(ctx context.Context, atOpen bool) error {
	var rows []store.MasterKeyVersion
	var named []store.KMSKey
	err := s.cfg.Store.Read(ctx, func(tx store.Tx) (err error) {
		if rows, err = tx.MasterKeys(ctx); err != nil {
			return err
		}
		named, err = tx.KMSKeys(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("read master key versions: %w", err)
	}
	kr, root := s.cfg.Keyring, s.root()
	current := make(map[string]string) // family -> version
	for _, r := range rows {
		if r.State == store.KeyCurrent {
			current[r.Family] = r.ID
		}
		if r.State == store.KeyDestroyed || r.ID == root.ID || kr.Has(r.ID) {
			continue
		}
		mk, err := keyring.UnwrapMasterKey(root, r.ID, r.Wrapped)
		if err != nil {
			return fmt.Errorf("master key version %s does not open with the root key %s: the root key does not belong to this store (hint: restore the data dir's master.key)", r.ID, root.ID)
		}
		if err := kr.AddIn(r.Family, mk); err != nil {
			return err
		}
	}
	for family, id := range current {
		if kr.CurrentKeyIDIn(family) != id {
			if err := kr.SetCurrentIn(family, id); err != nil {
				return err
			}
		}
	}
	for _, k := range named {
		kr.SetDisabled(k.ID, !k.Enabled)
	}
	if atOpen {
		for _, r := range rows {
			if r.State == store.KeyDestroyed && kr.Has(r.ID) && r.ID != kr.CurrentKeyID() {
				if err := kr.Remove(r.ID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Rotate rotates the default key (alias/aws/secretsmanager): see
// RotateKey.
func (s *Service) Rotate(ctx context.Context) (Version, error) { return s.RotateKey(ctx, "") }

// RotateKey creates a master key version of the key family ("" for the
// default key, else a named key's id), stores it wrapped by the root key,
// makes it current, and wakes the re-wrap job. The family's previous
// current version is retired. ErrNotFound for an unknown family.
func (s *Service) RotateKey(ctx context.Context, family string) (Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateLocked(ctx, family)
}

func (s *Service) rotateLocked(ctx context.Context, family string) (Version, error) {
	var mk keyring.MasterKey
	var out store.MasterKeyVersion
	err := s.cfg.Store.Write(ctx, func(tx store.Tx) error {
		all, err := tx.MasterKeys(ctx)
		if err != nil {
			return err
		}
		var rows []store.MasterKeyVersion
		for _, r := range all {
			if r.Family == family {
				rows = append(rows, r)
			}
		}
		if family != "" && len(rows) == 0 {
			return ErrNotFound
		}
		now := s.now()
		// The default family has no rows until its first rotation, when
		// the root key, current until then, is stored as its version 1
		// (after RotateRoot, the root key is not among them).
		root := s.root()
		n, hasRoot := len(rows)+1, family != "" || len(rows) > 0
		for _, r := range rows {
			if r.State == store.KeyCurrent {
				r.State, r.RetiredAt = store.KeyRetired, now
				if err := tx.PutMasterKey(ctx, r); err != nil {
					return err
				}
			}
		}
		if !hasRoot {
			// Until now the root key was current: it is version 1.
			n++
			r := store.MasterKeyVersion{ID: root.ID, State: store.KeyRetired, RetiredAt: now}
			if err := tx.PutMasterKey(ctx, r); err != nil {
				return err
			}
		}
		var b [32 + 4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("generate master key: %w", err)
		}
		mk = keyring.MasterKey{ID: fmt.Sprintf("mkv-%d-%s", n, hex.EncodeToString(b[32:])), Key: b[:32]}
		wrapped, err := keyring.WrapMasterKey(root, mk)
		if err != nil {
			return err
		}
		out = store.MasterKeyVersion{ID: mk.ID, Wrapped: wrapped, State: store.KeyCurrent, CreatedAt: now, Family: family}
		return tx.PutMasterKey(ctx, out)
	})
	if errors.Is(err, ErrNotFound) {
		return Version{}, err
	}
	if err != nil {
		return Version{}, fmt.Errorf("store new master key version: %w", err)
	}
	// Stored first, current second: an envelope is never under a version
	// the store does not hold.
	if err := s.install(family, mk); err != nil {
		return Version{}, err
	}
	s.log.Info("rotated master key", "key_id", mk.ID, "kms_key_id", family)
	s.Kick()
	return Version{ID: out.ID, State: out.State, CreatedAt: out.CreatedAt}, nil
}

// Kick wakes the re-wrap job.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// Status reports the default key's status: see StatusOf.
func (s *Service) Status(ctx context.Context) (Status, error) { return s.StatusOf(ctx, "") }

// StatusOf reports the versions of the key family ("" for the default
// key), how many envelopes each wraps, and the re-wrap job's progress for
// the family. It reads every access key (there are few).
func (s *Service) StatusOf(ctx context.Context, family string) (Status, error) {
	var rows []store.MasterKeyVersion
	var usage map[string]int
	var c cursor
	err := s.cfg.Store.Read(ctx, func(tx store.Tx) (err error) {
		if rows, err = tx.MasterKeys(ctx); err != nil {
			return err
		}
		if usage, err = s.usage(ctx, tx); err != nil {
			return err
		}
		c, err = readCursor(ctx, tx)
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("read key status: %w", err)
	}
	rootID := s.root().ID
	st := Status{Root: rootID}
	familyOf := make(map[string]string, len(rows))
	for _, r := range rows {
		familyOf[r.ID] = r.Family
		if r.State != store.KeyDestroyed && r.ID != rootID {
			st.RootWraps++
		}
	}
	rows = slices.DeleteFunc(rows, func(r store.MasterKeyVersion) bool { return r.Family != family })
	if len(rows) == 0 {
		if family != "" {
			return Status{}, ErrNotFound
		}
		rows = []store.MasterKeyVersion{{ID: rootID, State: store.KeyCurrent}}
	}
	for _, r := range rows {
		v := Version{ID: r.ID, State: r.State, CreatedAt: r.CreatedAt, RetiredAt: r.RetiredAt,
			Root: r.ID == rootID, Envelopes: usage[r.ID]}
		st.Versions = append(st.Versions, v)
		switch {
		case r.State == store.KeyCurrent:
			st.Current = r.ID
		case r.State == store.KeyRetired:
			st.Rewrap.Running = true
		}
	}
	for id, n := range usage {
		if id != st.Current && familyOf[id] == family {
			st.Rewrap.Pending += n
		}
	}
	if slices.Contains(strings.Split(c.Target, ","), st.Current) {
		st.Rewrap.Done = c.Done
	}
	return st, nil
}

// usage counts envelopes by master key id: secret versions, access keys
// and meta items.
func (s *Service) usage(ctx context.Context, tx store.Tx) (map[string]int, error) {
	m, err := tx.KeyUsage(ctx)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = make(map[string]int)
	}
	after := ""
	for {
		page, err := tx.AllAccessKeys(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, k := range page {
			if id, ok := keyring.KeyIDOf(k.SealedSecret); ok && k.SealedSecret != nil {
				m[id]++
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	for _, it := range s.cfg.Meta {
		v, err := tx.Meta(ctx, it.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if id, ok := keyring.KeyIDOf([]byte(v)); ok {
			m[id]++
		}
	}
	return m, nil
}

func readCursor(ctx context.Context, tx store.Tx) (cursor, error) {
	v, err := tx.Meta(ctx, CursorMeta)
	if errors.Is(err, store.ErrNotFound) {
		return cursor{}, nil
	}
	if err != nil {
		return cursor{}, err
	}
	var c cursor
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return cursor{}, nil // start over: a pass is harmless
	}
	return c, nil
}

func writeCursor(ctx context.Context, tx store.Tx, c cursor) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return tx.PutMeta(ctx, CursorMeta, string(b))
}

// install makes mk, already stored, the current version of family in the
// keyring.
func (s *Service) install(family string, mk keyring.MasterKey) error {
	if err := s.cfg.Keyring.AddIn(family, mk); err != nil {
		return err
	}
	return s.cfg.Keyring.SetCurrentIn(family, mk.ID)
}

// Refresh re-reads the master key versions and the named keys' state from
// the store after another node changed them, and wakes the re-wrap job
// (which another node's rotation may have given work). A version another
// node destroyed stays in this keyring, unused, until the next start.
func (s *Service) Refresh(ctx context.Context) error {
	s.mu.Lock()
	err := s.sync(ctx, false)
	s.mu.Unlock()
	s.Kick()
	return err
}
