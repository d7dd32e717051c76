package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/keys"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Master key versions (internal/keys): the root key wraps stored versions,
// which wrap data keys. openKeys runs right after the store is opened and
// before anything is sealed or opened, so that the keyring holds every
// version an envelope may name.

// sealedMeta lists the meta items sealed by the keyring, which a master key
// rotation re-wraps.
func sealedMeta() []keys.MetaItem {
	return []keys.MetaItem{
		{Key: keyCheckMeta, AAD: []byte(keyCheckAAD)},
		{Key: auditSignerMeta, AAD: auditSignerAAD},
	}
}

const keyCheckAAD = "rotor/key-check"

// KeysConfig tunes the master key re-wrap job; zero values take
// internal/keys' defaults. Tests set them (cmd/rotor:
// ROTOR_TEST_REWRAP_BATCH, ROTOR_TEST_REWRAP_DELAY) to make a re-wrap slow
// enough to be interrupted.
//
// RotationInterval (--master-key-rotation-interval), when positive, rotates
// every enabled key whose current version is older.
type KeysConfig struct {
	RewrapBatch      int
	RewrapDelay      time.Duration
	RotationInterval time.Duration
}

// openKeys loads the stored master key versions into kr (root is the root
// key) and returns the service that rotates them.
func openKeys(ctx context.Context, cfg Config, st store.Store, kr *keyring.Keyring, root keyring.MasterKey, log *slog.Logger) (*keys.Service, error) {
	return keys.Open(ctx, keys.Config{
		Store: st, Keyring: kr, Root: root, Meta: sealedMeta(), Logger: log,
		BatchSize: cfg.Keys.RewrapBatch, BatchDelay: cfg.Keys.RewrapDelay,
		RotationInterval: cfg.Keys.RotationInterval, Region: cfg.Region, AccountID: cfg.AccountID,
	})
}

// kmsKeys lets internal/secrets resolve KmsKeyId with internal/keys.
type kmsKeys struct{ keys *keys.Service }

func (k kmsKeys) LookupKMSKey(ctx context.Context, id string) (secrets.KMSKey, bool, error) {
	key, err := k.keys.Lookup(ctx, id)
	if errors.Is(err, keys.ErrNotFound) {
		return secrets.KMSKey{}, false, nil
	}
	if err != nil {
		return secrets.KMSKey{}, false, err
	}
	return secrets.KMSKey{ID: key.ID, ARN: key.ARN}, true, nil
}
