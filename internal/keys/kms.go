package keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Named keys. As KmsKeyId selects a KMS key in AWS, a secret selects a key
// family: the default key, alias/aws/secretsmanager (family ""), or a key
// an operator created (family = the key's id, a UUID). Each family has its
// own master key versions, wrapped by the root key like the default
// family's. A disabled key's envelopes do not open (keyring.DisabledError)
// until it is enabled again; the re-wrap job still moves them to their
// family's current version.

// DefaultAlias is the default key's alias.
const DefaultAlias = "alias/aws/secretsmanager"

// Errors of the named-key methods.
var (
	// ErrNotFound: no key has the id, ARN or alias.
	ErrNotFound = errors.New("keys: no such key")
	// ErrAliasExists: another key has the alias.
	ErrAliasExists = errors.New("keys: alias already exists")
	// ErrDefaultKey: the default key cannot be disabled.
	ErrDefaultKey = errors.New("keys: the default key cannot be changed")
)

// InvalidError is a request the caller must change; Msg says how.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Key is a KMS key as Lookup, CreateKey and Keys report it.
type Key struct {
	ID          string // "" for the default key
	ARN         string // "" for the default key
	Alias       string
	Description string
	Enabled     bool
	CreatedAt   time.Time
	Default     bool
}

// Family is the key family of the key's master key versions.
func (k Key) Family() string { return k.ID }

func (s *Service) keyOf(k store.KMSKey) Key {
	return Key{ID: k.ID, ARN: s.keyARN(k.ID), Alias: k.Alias, Description: k.Description,
		Enabled: k.Enabled, CreatedAt: k.CreatedAt}
}

func (s *Service) keyARN(id string) string {
	return "arn:aws:kms:" + s.cfg.Region + ":" + s.cfg.AccountID + ":key/" + id
}

func defaultKey() Key { return Key{Alias: DefaultAlias, Enabled: true, Default: true} }

// checkAlias validates a new key's alias as KMS does.
func checkAlias(alias string) error {
	if alias == "" {
		return nil
	}
	name, ok := strings.CutPrefix(alias, "alias/")
	switch {
	case !ok || name == "" || len(alias) > 256:
		return &InvalidError{Msg: "An alias must begin with alias/ and have 1 to 250 more characters."}
	case strings.HasPrefix(alias, "alias/aws/"):
		return &InvalidError{Msg: "Aliases that begin with alias/aws/ are reserved."}
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_-", r)) {
			return &InvalidError{Msg: "An alias may contain only letters, digits, /, _ and -."}
		}
	}
	return nil
}

// CreateKey creates a named key, enabled, with its first master key
// version. ErrAliasExists when another key has the alias; *InvalidError
// for a malformed or reserved alias or a description over 8,192
// characters.
func (s *Service) CreateKey(ctx context.Context, alias, description string) (Key, error) {
	if err := checkAlias(alias); err != nil {
		return Key{}, err
	}
	if len(description) > 8192 {
		return Key{}, &InvalidError{Msg: "A key's description has at most 8,192 characters."}
	}
	var b [16 + 32 + 4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	u := b[:16]
	u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
	h := hex.EncodeToString(u)
	id := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	mk := keyring.MasterKey{ID: "mkv-1-" + hex.EncodeToString(b[48:]), Key: b[16:48]}

	s.mu.Lock()
	defer s.mu.Unlock()
	k := store.KMSKey{ID: id, Alias: alias, Description: description, Enabled: true, CreatedAt: s.now()}
	err := s.cfg.Store.Write(ctx, func(tx store.Tx) error {
		if err := tx.PutKMSKey(ctx, k); err != nil {
			return err
		}
		wrapped, err := keyring.WrapMasterKey(s.root(), mk)
		if err != nil {
			return err
		}
		return tx.PutMasterKey(ctx, store.MasterKeyVersion{ID: mk.ID, Wrapped: wrapped, State: store.KeyCurrent,
			CreatedAt: k.CreatedAt, Family: id})
	})
	if errors.Is(err, store.ErrConflict) {
		return Key{}, ErrAliasExists
	}
	if err != nil {
		return Key{}, fmt.Errorf("store new key: %w", err)
	}
	if err := s.install(id, mk); err != nil {
		return Key{}, err
	}
	s.log.Info("created kms key", "kms_key_id", id, "alias", alias)
	return s.keyOf(k), nil
}

// Keys lists the named keys, oldest first (not the default key).
func (s *Service) Keys(ctx context.Context) ([]Key, error) {
	var ks []store.KMSKey
	err := s.cfg.Store.Read(ctx, func(tx store.Tx) (err error) {
		ks, err = tx.KMSKeys(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read kms keys: %w", err)
	}
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = s.keyOf(k)
	}
	return out, nil
}

// Lookup finds the key id names: a key id, a key ARN, an alias
// (alias/NAME) or an alias ARN (arn:aws:kms:REGION:ACCOUNT:alias/NAME); ""
// and the default alias name the default key. ErrNotFound when none
// matches. The keyring is brought up to date with a key created by another
// server, so that it can seal with it at once.
func (s *Service) Lookup(ctx context.Context, id string) (Key, error) {
	ref := id
	if rest, ok := strings.CutPrefix(id, "arn:aws:kms:"); ok {
		region, rest, _ := strings.Cut(rest, ":")
		account, rest, _ := strings.Cut(rest, ":")
		if region != s.cfg.Region || account != s.cfg.AccountID {
			return Key{}, ErrNotFound
		}
		switch {
		case strings.HasPrefix(rest, "alias/"):
			ref = rest
		case strings.HasPrefix(rest, "key/"):
			ref = strings.TrimPrefix(rest, "key/")
			if ref == "" || strings.HasPrefix(ref, "alias/") {
				return Key{}, ErrNotFound
			}
		default:
			return Key{}, ErrNotFound
		}
	}
	if ref == "" || ref == DefaultAlias {
		return defaultKey(), nil
	}
	ks, err := s.Keys(ctx)
	if err != nil {
		return Key{}, err
	}
	for _, k := range ks {
		if k.ID == ref || k.Alias != "" && k.Alias == ref {
			if s.cfg.Keyring.CurrentKeyIDIn(k.ID) == "" {
				s.mu.Lock()
				err := s.sync(ctx, false)
				s.mu.Unlock()
				if err != nil {
					return Key{}, err
				}
			}
			return k, nil
		}
	}
	return Key{}, ErrNotFound
}

// SetEnabled enables or disables the named key id names (as Lookup). A
// disabled key's secrets fail to open on this server at once, and on
// others at their next poll. ErrNotFound, or ErrDefaultKey for the default
// key.
func (s *Service) SetEnabled(ctx context.Context, id string, enabled bool) (Key, error) {
	k, err := s.Lookup(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if k.Default {
		return Key{}, ErrDefaultKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out store.KMSKey
	err = s.cfg.Store.Write(ctx, func(tx store.Tx) error {
		ks, err := tx.KMSKeys(ctx)
		if err != nil {
			return err
		}
		for _, sk := range ks {
			if sk.ID == k.ID {
				sk.Enabled = enabled
				out = sk
				return tx.PutKMSKey(ctx, sk)
			}
		}
		return ErrNotFound
	})
	if errors.Is(err, ErrNotFound) {
		return Key{}, err
	}
	if err != nil {
		return Key{}, fmt.Errorf("store kms key: %w", err)
	}
	s.cfg.Keyring.SetDisabled(k.ID, !enabled)
	s.log.Info("changed kms key", "kms_key_id", k.ID, "enabled", enabled)
	return s.keyOf(out), nil
}

// rotateDue rotates every enabled key whose current version is older than
// Config.RotationInterval (the default key's root key counts as old).
func (s *Service) rotateDue(ctx context.Context) error {
	if s.cfg.RotationInterval <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
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
	born := map[string]time.Time{"": {}} // family -> its current version's creation
	for _, k := range named {
		if k.Enabled {
			born[k.ID] = time.Time{}
		}
	}
	for _, r := range rows {
		if _, ok := born[r.Family]; ok && r.State == store.KeyCurrent {
			born[r.Family] = r.CreatedAt
		}
	}
	now := s.cfg.Now()
	var errs []error
	for family, at := range born {
		if now.Sub(at) < s.cfg.RotationInterval {
			continue
		}
		v, err := s.rotateLocked(ctx, family)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Info("scheduled master key rotation", "kms_key_id", family, "key_id", v.ID)
	}
	return errors.Join(errs...)
}
