package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/rotor-secrets/rotor/internal/awsapi"
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

// keyAdmin is internal/keys' service with the root key's source, which
// rotor.RotateRootKey replaces.
type keyAdmin struct {
	*keys.Service
	cfg Config
}

// RotateRootKey replaces the root key with a new one (keys.RotateRoot):
// master.key.next, or master.seal.next sealed under passphrase, which must
// open the current master.seal. The environment cannot be changed from
// here: with ROTOR_MASTER_KEY it refuses.
func (k keyAdmin) RotateRootKey(ctx context.Context, passphrase []byte) (keys.RootRotation, error) {
	var src keyring.RootReplacer
	if k.cfg.Store != "" {
		return keys.RootRotation{}, &keys.PreconditionError{Msg: "the store is shared by several nodes, each with its own copy of the root key: " +
			"replacing it on one node would leave the others unable to open the store. Rotate master keys (rotor key rotate) instead; " +
			"to replace the root key, stop the nodes and rotate it on one node with the store, then copy the new key to every node"}
	}
	switch k.cfg.MasterKeySource {
	case KeySourceEnv:
		return keys.RootRotation{}, &keys.PreconditionError{Msg: "the root key comes from ROTOR_MASTER_KEY: the server cannot change its environment, so it cannot replace the root key; " +
			"move the key to a file (--master-key-source file with the key in <data-dir>/master.key) and rotate the root key there"}
	case KeySourcePassphrase:
		if len(passphrase) == 0 {
			return keys.RootRotation{}, &keys.InvalidError{Msg: "Passphrase is required: the root key is sealed with a passphrase in master.seal, and the new one is sealed with the same passphrase."}
		}
		src = keyring.PassphraseSource{Path: filepath.Join(k.cfg.DataDir, SealFile), Passphrase: passphrase}
	default:
		if len(passphrase) > 0 {
			return keys.RootRotation{}, &keys.InvalidError{Msg: "Passphrase is only for a server started with --master-key-source passphrase."}
		}
		src = keyring.FileSource{Path: filepath.Join(k.cfg.DataDir, MasterKeyFile), NoCreate: true}
	}
	cur, err := src.RootKey(ctx)
	if errors.Is(err, keyring.ErrWrongPassphrase) {
		return keys.RootRotation{}, &awsapi.InvalidPassphraseError{Msg: "The passphrase does not open master.seal; the root key was not rotated."}
	}
	if err != nil {
		return keys.RootRotation{}, fmt.Errorf("read the root key: %w", err)
	}
	if st, err := k.Status(ctx); err != nil {
		return keys.RootRotation{}, err
	} else if st.Root != cur.ID {
		return keys.RootRotation{}, &keys.PreconditionError{Msg: fmt.Sprintf("the data dir's root key (%s) is not the one the server runs with (%s): restart the server first", cur.ID, st.Root)}
	}
	next, err := keyring.NewMasterKey()
	if err != nil {
		return keys.RootRotation{}, err
	}
	return k.RotateRoot(ctx, src, next)
}

// recoverRoot finishes or undoes a root key rotation interrupted by a
// crash (keys.RecoverRoot), when src has a pending root key.
func recoverRoot(ctx context.Context, cfg Config, log *slog.Logger, src keyring.RootReplacer, mk keyring.MasterKey) (keyring.MasterKey, error) {
	if _, ok, _ := src.PendingRoot(ctx); !ok {
		return mk, nil
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return mk, fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	got, committed, err := keys.RecoverRoot(ctx, st, src, mk)
	if err != nil {
		return mk, fmt.Errorf("interrupted root key rotation: %w", err)
	}
	if committed {
		log.Warn("finished an interrupted root key rotation", "old_key_id", mk.ID, "key_id", got.ID)
	} else {
		log.Warn("discarded the pending root key of an interrupted root key rotation", "key_id", mk.ID)
	}
	return got, nil
}
