package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Run is the re-wrap job: it works while retired versions remain and
// sleeps otherwise (Rotate wakes it), until ctx ends. With
// Config.RotationInterval it also rotates the keys that are due, at most
// once per Config.PollInterval.
func (s *Service) Run(ctx context.Context) {
	var checked time.Time // last look for keys due for rotation
	for {
		s.removeDue()
		if s.cfg.RotationInterval > 0 && time.Since(checked) >= s.cfg.PollInterval {
			checked = time.Now()
			if err := s.rotateDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("scheduled master key rotation", "err", err)
			}
		}
		res, err := s.Step(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := s.cfg.PollInterval
		switch {
		case err != nil:
			s.log.Error("re-wrap master keys", "err", err)
		case res.More:
			wait = s.cfg.BatchDelay
		case res.Wait > 0 && res.Wait < wait:
			wait = res.Wait
		}
		if next, ok := s.nextRemoval(); ok && time.Until(next) < wait {
			wait = max(time.Until(next), 0)
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// StepResult tells Run what to do after a Step.
type StepResult struct {
	More bool // another batch is ready
	// Wait, when positive, is when a retired version's grace ends.
	Wait time.Duration
	// Destroyed lists the versions this step destroyed.
	Destroyed []string
}

// Step runs one batch of the re-wrap job in one store Write. Run calls it
// in a loop; tests call it to stop between batches.
func (s *Service) Step(ctx context.Context) (StepResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx, false); err != nil {
		return StepResult{}, err
	}
	var res StepResult
	var c cursor
	err := s.cfg.Store.Write(ctx, func(tx store.Tx) error {
		res = StepResult{}
		rows, err := tx.MasterKeys(ctx)
		if err != nil {
			return err
		}
		// Every family's current version; the pass re-wraps each envelope
		// to its own family's (keyring.Rewrap).
		currents := []string{s.cfg.Keyring.CurrentKeyID()}
		for _, r := range rows {
			if r.State == store.KeyCurrent && r.Family != "" {
				currents = append(currents, r.ID)
			}
		}
		slices.Sort(currents)
		cur := strings.Join(currents, ",")
		var retired []store.MasterKeyVersion
		for _, r := range rows {
			if r.State == store.KeyRetired && !slices.Contains(currents, r.ID) {
				retired = append(retired, r)
			}
		}
		if len(retired) == 0 {
			return nil
		}
		if c, err = readCursor(ctx, tx); err != nil {
			return err
		}
		if c.Target != cur || c.Phase == "" || c.Phase == phaseIdle {
			done := c.Done
			if c.Target != cur {
				done = 0
			}
			c = cursor{Target: cur, Phase: phaseVersions, Done: done}
		}
		res.More = true
		switch c.Phase {
		case phaseVersions:
			err = s.rewrapVersions(ctx, tx, &c)
		case phaseAccessKeys:
			err = s.rewrapAccessKeys(ctx, tx, &c)
		case phaseMeta:
			err = s.rewrapMeta(ctx, tx, &c)
		default: // phaseCheck
			res, err = s.check(ctx, tx, &c, rows, currents, retired)
		}
		if err != nil {
			return err
		}
		return writeCursor(ctx, tx, c)
	})
	if err != nil {
		return StepResult{}, fmt.Errorf("re-wrap batch: %w", err)
	}
	if len(res.Destroyed) > 0 {
		at := s.cfg.Now().Add(s.cfg.Grace)
		s.rmMu.Lock()
		for _, id := range res.Destroyed {
			s.removals = append(s.removals, removal{id: id, at: at})
		}
		s.rmMu.Unlock()
		s.log.Info("destroyed master key versions", "key_ids", res.Destroyed, "rewrapped", c.Done)
	}
	return res, nil
}

// rewrapVersions re-wraps one batch of secret versions.
func (s *Service) rewrapVersions(ctx context.Context, tx store.Tx, c *cursor) error {
	vs, err := tx.SealedVersionsNotUnderAny(ctx, strings.Split(c.Target, ","), c.After, c.AfterID, s.cfg.BatchSize)
	if err != nil {
		return err
	}
	for _, v := range vs {
		sealed, id, err := s.cfg.Keyring.Rewrap(v.Sealed, secretAAD(v.SecretARN, v.VersionID))
		if err != nil {
			s.failed(c, err, "secret_arn", v.SecretARN, "version_id", v.VersionID)
			continue
		}
		v.Sealed, v.KeyID = sealed, id
		if err := tx.UpdateVersion(ctx, v); err != nil {
			return err
		}
		c.Done++
	}
	if len(vs) < s.cfg.BatchSize {
		c.Phase, c.After, c.AfterID = phaseAccessKeys, "", ""
		return nil
	}
	last := vs[len(vs)-1]
	c.After, c.AfterID = last.SecretARN, last.VersionID
	return nil
}

// rewrapAccessKeys re-wraps one batch of access keys' secrets.
func (s *Service) rewrapAccessKeys(ctx context.Context, tx store.Tx, c *cursor) error {
	ks, err := tx.AllAccessKeys(ctx, c.After, s.cfg.BatchSize)
	if err != nil {
		return err
	}
	for _, k := range ks {
		if id, ok := keyring.KeyIDOf(k.SealedSecret); k.SealedSecret == nil || (ok && targets(c, id)) {
			continue
		}
		sealed, _, err := s.cfg.Keyring.Rewrap(k.SealedSecret, accessKeyAAD(k.ID))
		if err != nil {
			s.failed(c, err, "access_key_id", k.ID)
			continue
		}
		k.SealedSecret = sealed
		if err := tx.PutAccessKey(ctx, k); err != nil {
			return err
		}
		c.Done++
	}
	if len(ks) < s.cfg.BatchSize {
		c.Phase, c.After = phaseMeta, ""
		return nil
	}
	c.After = ks[len(ks)-1].ID
	return nil
}

// rewrapMeta re-wraps the sealed meta items.
func (s *Service) rewrapMeta(ctx context.Context, tx store.Tx, c *cursor) error {
	for _, it := range s.cfg.Meta {
		v, err := tx.Meta(ctx, it.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if id, ok := keyring.KeyIDOf([]byte(v)); ok && targets(c, id) {
			continue
		}
		sealed, _, err := s.cfg.Keyring.Rewrap([]byte(v), it.AAD)
		if err != nil {
			s.failed(c, err, "meta_key", it.Key)
			continue
		}
		if err := tx.PutMeta(ctx, it.Key, string(sealed)); err != nil {
			return err
		}
		c.Done++
	}
	c.Phase = phaseCheck
	return nil
}

// targets reports whether the key id is one the pass re-wraps to.
func targets(c *cursor, id string) bool {
	return slices.Contains(strings.Split(c.Target, ","), id)
}

// check ends a pass: it counts what each retired version still wraps,
// destroys the retired versions of the families with nothing left to
// re-wrap once their grace has passed, and starts another pass if any
// envelope is not under its family's current version.
func (s *Service) check(ctx context.Context, tx store.Tx, c *cursor, rows []store.MasterKeyVersion, currents []string, retired []store.MasterKeyVersion) (StepResult, error) {
	usage, err := s.usage(ctx, tx)
	if err != nil {
		return StepResult{}, err
	}
	cur := strings.Join(currents, ",")
	familyOf := make(map[string]string, len(rows))
	for _, r := range rows {
		familyOf[r.ID] = r.Family
	}
	var res StepResult
	pending := 0
	pendingIn := make(map[string]int) // by family
	for id, n := range usage {
		if !slices.Contains(currents, id) {
			pending += n
			pendingIn[familyOf[id]] += n
		}
	}
	now := s.cfg.Now()
	// A family whose envelopes are all under its current version loses
	// its empty retired versions even while another family's re-wrap
	// goes on.
	var waitRetired []store.MasterKeyVersion
	for _, r := range retired {
		if pendingIn[r.Family] > 0 {
			continue
		}
		if pending > 0 && r.RetiredAt.Add(s.cfg.Grace).Sub(now) <= 0 {
			r.Wrapped, r.State = nil, store.KeyDestroyed
			if err := tx.PutMasterKey(ctx, r); err != nil {
				return StepResult{}, err
			}
			res.Destroyed = append(res.Destroyed, r.ID)
			continue
		}
		waitRetired = append(waitRetired, r)
	}
	retired = waitRetired
	if pending > 0 {
		// Written under an old version meanwhile, or not openable.
		failed := c.Failed
		*c = cursor{Target: cur, Phase: phaseVersions, Done: c.Done, LastError: c.LastError}
		if failed > 0 {
			// The same envelopes would fail again at once: wait for the
			// next poll (an operator must look at the log).
			c.Phase = phaseIdle
			return res, nil
		}
		res.More = true
		return res, nil
	}
	for _, r := range retired {
		if wait := r.RetiredAt.Add(s.cfg.Grace).Sub(now); wait > 0 {
			if res.Wait == 0 || wait < res.Wait {
				res.Wait = wait
			}
			continue
		}
		r.Wrapped, r.State = nil, store.KeyDestroyed
		if err := tx.PutMasterKey(ctx, r); err != nil {
			return StepResult{}, err
		}
		res.Destroyed = append(res.Destroyed, r.ID)
	}
	if res.Wait > 0 {
		// Count again once the grace has passed.
		return res, nil
	}
	c.Phase, c.Failed, c.LastError = phaseIdle, 0, ""
	return res, nil
}

func (s *Service) failed(c *cursor, err error, args ...any) {
	c.Failed++
	c.LastError = err.Error()
	s.log.Error("cannot re-wrap envelope; its master key version will not be destroyed", append(args, "err", err)...)
}

// removeDue forgets destroyed versions whose grace has passed.
func (s *Service) removeDue() {
	now := s.cfg.Now()
	s.rmMu.Lock()
	defer s.rmMu.Unlock()
	keep := s.removals[:0]
	for _, r := range s.removals {
		if now.Before(r.at) {
			keep = append(keep, r)
			continue
		}
		if err := s.cfg.Keyring.Remove(r.id); err != nil {
			s.log.Error("forget destroyed master key", "key_id", r.id, "err", err)
		}
	}
	s.removals = keep
}

func (s *Service) nextRemoval() (time.Time, bool) {
	s.rmMu.Lock()
	defer s.rmMu.Unlock()
	var next time.Time
	for _, r := range s.removals {
		if next.IsZero() || r.at.Before(next) {
			next = r.at
		}
	}
	return next, !next.IsZero()
}

// secretAAD is internal/secrets' additional data of a secret version's
// value: ARN, a zero byte, version id (a test holds them equal).
func secretAAD(secretARN, versionID string) []byte {
	b := make([]byte, 0, len(secretARN)+1+len(versionID))
	b = append(b, secretARN...)
	b = append(b, 0)
	return append(b, versionID...)
}

// accessKeyAAD is internal/auth's additional data of an access key's
// secret.
func accessKeyAAD(id string) []byte { return []byte("rotor/access-key/" + id) }
