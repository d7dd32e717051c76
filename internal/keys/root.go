package keys

import (
	"context"
	"errors"
	"fmt"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Root key rotation (after a leak of master.key): RotateRoot replaces the
// root key that wraps the stored versions. It needs no data key to be
// under the root key itself (the root key as version 0 of the default
// key): a `rotor key rotate` and its re-wrap move them off first, so that
// re-wrapping the few stored versions, in one Write, is all there is to
// do. The protocol with the root key's source (keyring.RootReplacer):
//
//  1. the new root key is staged, durably, beside the current one;
//  2. one Write re-wraps every version that is not destroyed under it and
//     destroys the old root key's row;
//  3. the staged key replaces the current one (CommitRoot).
//
// A crash after 1 leaves a staged key that opens no stored version; after
// 2, one that opens them all: RecoverRoot, at start, keeps the right one.

// PreconditionError refuses an operation the key hierarchy's state does
// not allow yet; Msg says what to do first.
type PreconditionError struct{ Msg string }

func (e *PreconditionError) Error() string { return e.Msg }

// RootRotation is what RotateRoot did.
type RootRotation struct {
	Old, New  string // root key ids
	Rewrapped int    // stored versions re-wrapped
	Warning   string // set when the new key is in use but not yet the source's root key
}

// RotateRoot makes next the root key: see the comment above. It returns a
// *PreconditionError while data keys are still under the root key. Once
// the store has committed, the service wraps new versions with next even
// if src.CommitRoot fails (RootRotation.Warning then says so, and the
// next start finishes the rename).
func (s *Service) RotateRoot(ctx context.Context, src keyring.RootReplacer, next keyring.MasterKey) (RootRotation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.root()
	if next.ID == old.ID {
		return RootRotation{}, errors.New("keys: the new root key is the current one")
	}
	// Refuse before anything is written; checked again in the Write.
	err := s.cfg.Store.Read(ctx, func(tx store.Tx) error {
		_, err := s.rootPrecondition(ctx, tx, old)
		return err
	})
	if err != nil {
		return RootRotation{}, err
	}
	if err := src.StageRoot(ctx, next); err != nil {
		return RootRotation{}, fmt.Errorf("stage new root key: %w", err)
	}
	n := 0
	err = s.cfg.Store.Write(ctx, func(tx store.Tx) error {
		n = 0
		rows, err := s.rootPrecondition(ctx, tx, old)
		if err != nil {
			return err
		}
		now := s.now()
		for _, r := range rows {
			switch {
			case r.ID == old.ID:
				// Wraps nothing (checked above): destroyed, so that no start
				// looks for it again.
				if r.RetiredAt.IsZero() {
					r.RetiredAt = now
				}
				r.Wrapped, r.State = nil, store.KeyDestroyed
			case r.State == store.KeyDestroyed:
				continue
			default:
				mk, err := keyring.UnwrapMasterKey(old, r.ID, r.Wrapped)
				if err != nil {
					return fmt.Errorf("master key version %s does not open with the root key %s", r.ID, old.ID)
				}
				if r.Wrapped, err = keyring.WrapMasterKey(next, mk); err != nil {
					return err
				}
				n++
			}
			if err := tx.PutMasterKey(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if derr := src.DiscardRoot(ctx); derr != nil {
			s.log.Error("discard staged root key", "err", derr)
		}
		var pe *PreconditionError
		if errors.As(err, &pe) {
			return RootRotation{}, err
		}
		return RootRotation{}, fmt.Errorf("re-wrap master key versions under the new root key: %w", err)
	}
	// The store is under next: from now on so is the service, whatever
	// happens to the rename.
	s.rootMu.Lock()
	s.rootMK = next
	s.rootMu.Unlock()
	s.rmMu.Lock()
	s.removals = append(s.removals, removal{id: old.ID, at: s.cfg.Now().Add(s.cfg.Grace)})
	s.rmMu.Unlock()
	out := RootRotation{Old: old.ID, New: next.ID, Rewrapped: n}
	if err := src.CommitRoot(ctx); err != nil {
		s.log.Error("install new root key; the next start installs it", "err", err, "key_id", next.ID)
		out.Warning = "the new root key is in use, but its pending file (" + keyring.PendingSuffix + ") could not be renamed into place; the next start finishes it: do not delete the pending file"
	}
	s.log.Info("rotated root key", "old_key_id", old.ID, "key_id", next.ID, "versions", n)
	return out, nil
}

// rootPrecondition returns the stored versions when no data key is under
// the root key old, else a *PreconditionError.
func (s *Service) rootPrecondition(ctx context.Context, tx store.Tx, old keyring.MasterKey) ([]store.MasterKeyVersion, error) {
	rows, err := tx.MasterKeys(ctx)
	if err != nil {
		return nil, err
	}
	usage, err := s.usage(ctx, tx)
	if err != nil {
		return nil, err
	}
	stored := false
	for _, r := range rows {
		if r.ID == old.ID && r.Family == "" {
			stored = true
		}
	}
	if n := usage[old.ID]; n > 0 || !stored {
		msg := fmt.Sprintf("the root key still wraps %d data keys: run `rotor key rotate` and wait until `rotor key status` shows the root wrapping none", n)
		if !stored && n == 0 {
			msg = "the root key is still the current master key: run `rotor key rotate` and wait until `rotor key status` shows the root wrapping none"
		}
		return nil, &PreconditionError{Msg: msg}
	}
	return rows, nil
}

func (s *Service) root() keyring.MasterKey {
	s.rootMu.RLock()
	defer s.rootMu.RUnlock()
	return s.rootMK
}

// RootOpens reports whether root opens every stored version that is not
// destroyed; checked is how many there are (none: nothing to tell by).
func RootOpens(ctx context.Context, st store.Store, root keyring.MasterKey) (ok bool, checked int, err error) {
	var rows []store.MasterKeyVersion
	err = st.Read(ctx, func(tx store.Tx) (err error) {
		rows, err = tx.MasterKeys(ctx)
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("read master key versions: %w", err)
	}
	ok = true
	for _, r := range rows {
		if r.State == store.KeyDestroyed || r.Wrapped == nil {
			continue
		}
		checked++
		if _, err := keyring.UnwrapMasterKey(root, r.ID, r.Wrapped); err != nil {
			ok = false
		}
	}
	return ok && checked > 0, checked, nil
}

// RecoverRoot finishes or undoes a root key rotation that a crash
// interrupted: when src has a pending root key, the one of current and
// pending that opens the stored versions is kept (the pending one is
// committed, or discarded) and returned. Without a pending key it returns
// current. When neither opens them, it returns an error and changes
// nothing.
func RecoverRoot(ctx context.Context, st store.Store, src keyring.RootReplacer, current keyring.MasterKey) (keyring.MasterKey, bool, error) {
	next, ok, perr := src.PendingRoot(ctx)
	if !ok {
		return current, false, perr
	}
	if perr == nil {
		opens, _, err := RootOpens(ctx, st, next)
		if err != nil {
			return current, false, err
		}
		if opens {
			if err := src.CommitRoot(ctx); err != nil {
				return current, false, err
			}
			return next, true, nil
		}
	}
	opens, checked, err := RootOpens(ctx, st, current)
	if err != nil {
		return current, false, err
	}
	if !opens && checked > 0 {
		return current, false, fmt.Errorf("neither the root key %s nor the pending one opens the stored master key versions (pending: %v); nothing was changed", current.ID, perr)
	}
	if err := src.DiscardRoot(ctx); err != nil {
		return current, false, err
	}
	return current, false, nil
}
