package keyring

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Replacing the root key. A new root key is written beside the current one
// as a pending file (the source's path + PendingSuffix), durably, before
// the store re-wraps its versions under it; once the store has committed,
// CommitRoot renames the pending file over the current one. A crash in
// between leaves both files: whoever starts next keeps the one that opens
// the stored versions (CommitRoot or DiscardRoot).

// PendingSuffix names a pending root key file: master.key.next,
// master.seal.next.
const PendingSuffix = ".next"

// RootReplacer is a Source whose root key can be replaced in two steps.
type RootReplacer interface {
	Source
	// StageRoot durably writes next as the pending root key, replacing a
	// pending one left by an earlier attempt.
	StageRoot(ctx context.Context, next MasterKey) error
	// PendingRoot returns the pending root key; ok is false when there is
	// none.
	PendingRoot(ctx context.Context) (mk MasterKey, ok bool, err error)
	// CommitRoot makes the pending root key the root key, atomically and
	// durably.
	CommitRoot(ctx context.Context) error
	// DiscardRoot deletes the pending root key, if any.
	DiscardRoot(ctx context.Context) error
}

var (
	_ RootReplacer = FileSource{}
	_ RootReplacer = PassphraseSource{}
)

// StageRoot implements RootReplacer: Path.next, mode 0600, file and
// directory synced.
func (s FileSource) StageRoot(ctx context.Context, next MasterKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkMasterKey(next); err != nil {
		return err
	}
	p := s.Path + PendingSuffix
	if err := removeIfExists(p); err != nil {
		return err
	}
	if err := writeFileAtomic(p, []byte(base64.StdEncoding.EncodeToString(next.Key)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write pending master key file: %w", err)
	}
	return syncDir(filepath.Dir(p))
}

// PendingRoot implements RootReplacer.
func (s FileSource) PendingRoot(ctx context.Context) (MasterKey, bool, error) {
	if err := ctx.Err(); err != nil {
		return MasterKey{}, false, err
	}
	p := s.Path + PendingSuffix
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return MasterKey{}, false, nil
	}
	if err != nil {
		return MasterKey{}, true, fmt.Errorf("read pending master key file: %w", err)
	}
	mk, err := ParseKey(string(b))
	if err != nil {
		return MasterKey{}, true, fmt.Errorf("pending master key file %s: %w", p, err)
	}
	return mk, true, nil
}

// CommitRoot implements RootReplacer.
func (s FileSource) CommitRoot(ctx context.Context) error { return commitPending(ctx, s.Path) }

// DiscardRoot implements RootReplacer.
func (s FileSource) DiscardRoot(ctx context.Context) error { return discardPending(ctx, s.Path) }

// StageRoot implements RootReplacer: next is sealed under the same
// passphrase into Path.next, with the current seal file's Argon2id
// parameters (Params when there is none) and a new salt.
func (s PassphraseSource) StageRoot(ctx context.Context, next MasterKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	params, err := ReadSealParams(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		params, err = s.Params, nil
	}
	if err != nil {
		return fmt.Errorf("read seal file parameters: %w", err)
	}
	p := s.Path + PendingSuffix
	if err := removeIfExists(p); err != nil {
		return err
	}
	return WriteSealFile(p, s.Passphrase, next, params)
}

// PendingRoot implements RootReplacer; a pending file that the passphrase
// does not open is an error (ErrWrongPassphrase, ErrSealCorrupt).
func (s PassphraseSource) PendingRoot(ctx context.Context) (MasterKey, bool, error) {
	p := s.Path + PendingSuffix
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return MasterKey{}, false, nil
	}
	mk, err := PassphraseSource{Path: p, Passphrase: s.Passphrase}.RootKey(ctx)
	return mk, true, err
}

// CommitRoot implements RootReplacer.
func (s PassphraseSource) CommitRoot(ctx context.Context) error { return commitPending(ctx, s.Path) }

// DiscardRoot implements RootReplacer.
func (s PassphraseSource) DiscardRoot(ctx context.Context) error { return discardPending(ctx, s.Path) }

func commitPending(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(path+PendingSuffix, path); err != nil {
		return fmt.Errorf("install pending root key: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func discardPending(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := removeIfExists(path + PendingSuffix); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pending root key: %w", err)
	}
	return nil
}
