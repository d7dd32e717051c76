package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rotor-secrets/rotor/internal/arn"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/rotation/schedule"
	"github.com/rotor-secrets/rotor/internal/store"
)

// RotateSecretInput is RotateSecret's request.
type RotateSecretInput struct {
	SecretID           string
	ClientRequestToken string
	RotationLambdaARN  string
	RotationRules      *RotationRules
	RotateImmediately  *bool // nil: true
}

// RotationStatus is a secret's rotation configuration and progress
// (Rotor's GetRotationStatus).
type RotationStatus struct {
	ARN               string
	Name              string
	RotationEnabled   bool
	RotationLambdaARN string
	RotationRules     *RotationRules
	LastRotatedDate   time.Time
	NextRotationDate  time.Time
	// The run in progress, if any.
	InProgress *rotation.State
	History    []rotation.Run
}

const msgCannotInvoke = "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com."

// RotateSecret configures rotation and starts one in the background: it
// creates the AWSPENDING version (the token is its id) and returns at once.
// With RotateImmediately false it only tests the function (testSecret) and
// leaves the real rotation to the schedule.
func (s *Service) RotateSecret(ctx context.Context, in RotateSecretInput) (Ref, string, error) {
	var fnName string
	if in.RotationLambdaARN != "" {
		if err := checkLen("rotationLambdaARN", in.RotationLambdaARN, 1, 2048); err != nil {
			return Ref{}, "", err
		}
		name, ok := arn.ParseFunction(in.RotationLambdaARN)
		if !ok {
			return Ref{}, "", errorf(KindInvalidParameter, "RotationLambdaARN must be a Lambda function ARN: arn:aws:lambda:REGION:ACCOUNT:function:NAME.")
		}
		if s.cfg.Functions == nil || !s.cfg.Functions.Has(name) {
			return Ref{}, "", errorf(KindAccessDenied, msgCannotInvoke)
		}
		fnName = name
	}
	var rulesJSON string
	if in.RotationRules != nil {
		b, _ := json.Marshal(in.RotationRules)
		rulesJSON = string(b)
		if _, _, err := s.plan(rulesJSON, time.Time{}); err != nil {
			return Ref{}, "", err
		}
	}
	token, verr := s.versionToken(in.ClientRequestToken)
	if verr != nil {
		return Ref{}, "", verr
	}
	mode := rotation.ModeRotate
	if in.RotateImmediately != nil && !*in.RotateImmediately {
		mode = rotation.ModeTest
	}

	var (
		ref       Ref
		versionID string
		reattempt bool
	)
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := s.resolveLive(ctx, tx, in.SecretID)
		if err != nil {
			return err
		}
		ref = Ref{ARN: sec.ARN, Name: sec.Name}
		lambda := sec.Rotation.LambdaARN
		if in.RotationLambdaARN != "" {
			lambda = in.RotationLambdaARN
		} else if lambda == "" {
			return errorf(KindInvalidRequest, "No Lambda rotation function ARN is associated with this secret.")
		} else if fnName, _ = arn.ParseFunction(lambda); s.cfg.Functions == nil || !s.cfg.Functions.Has(fnName) {
			return errorf(KindAccessDenied, msgCannotInvoke)
		}
		if _, err := tx.VersionByStage(ctx, sec.ARN, StageCurrent); errors.Is(err, store.ErrNotFound) {
			return errorf(KindInvalidRequest, "The secret has no AWSCURRENT version to rotate: put a value first.")
		} else if err != nil {
			return internal("read version", err)
		}
		st, err := rotation.DecodeState(sec.Rotation.StateJSON)
		if err != nil {
			return internal("read rotation state", err)
		}
		if pending, busy, err := s.rotationInProgress(ctx, tx, sec); err != nil {
			return err
		} else if busy {
			if st.Active() && pending == token && st.Token == token {
				versionID = token // a retry of the call that started it
				return nil
			}
			reattempt = true
			return errorf(KindInvalidRequest, msgPreviousRotation)
		}
		if v, err := tx.Version(ctx, sec.ARN, token); err == nil {
			if hasStage(v.Stages, StageCurrent) {
				versionID = token // this token's rotation already finished
				return nil
			}
			return errorf(KindExists, "You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", echo(token), sec.ARN)
		} else if !errors.Is(err, store.ErrNotFound) {
			return internal("read version", err)
		}

		sec.Rotation.Configured = true
		sec.Rotation.Enabled = true
		sec.Rotation.LambdaARN = lambda
		if rulesJSON != "" {
			sec.Rotation.RulesJSON = rulesJSON
		}
		if sec.Rotation.RulesJSON != "" {
			_, next, err := s.plan(sec.Rotation.RulesJSON, sec.Rotation.LastRotatedAt)
			if err != nil {
				return err
			}
			sec.Rotation.NextRotationAt = next
		}
		if err := s.beginRun(ctx, tx, &sec, st, token, fnName, mode); err != nil {
			return err
		}
		versionID = token
		return nil
	})
	if reattempt {
		s.reattempt(ctx, ref.ARN)
	}
	if err != nil {
		return Ref{}, "", err
	}
	s.cfg.Kick()
	return ref, versionID, nil
}

// plan validates rules and returns the engine's wake-up time and the
// NextRotationDate.
func (s *Service) plan(rulesJSON string, lastRotated time.Time) (time.Time, time.Time, error) {
	if s.cfg.Planner == nil {
		return time.Time{}, time.Time{}, errorf(KindInvalidRequest, "Rotation schedules are not available on this server.")
	}
	wake, next, err := s.cfg.Planner.Plan(rulesJSON, lastRotated, s.now())
	var rerr *schedule.RuleError
	switch {
	case errors.As(err, &rerr) && rerr.Constraint:
		return time.Time{}, time.Time{}, errorf(KindValidation, "%s", rerr.Message)
	case errors.As(err, &rerr):
		return time.Time{}, time.Time{}, errorf(KindInvalidParameter, "%s", rerr.Message)
	case err != nil:
		return time.Time{}, time.Time{}, errorf(KindInvalidParameter, "%s", err.Error())
	}
	return wake, next, nil
}

// rotationInProgress reports whether AWSPENDING is on a version other than
// AWSCURRENT, and which.
func (s *Service) rotationInProgress(ctx context.Context, tx store.Tx, sec store.Secret) (string, bool, error) {
	pending, err := tx.VersionByStage(ctx, sec.ARN, StagePending)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, internal("read version", err)
	}
	return pending.VersionID, !hasStage(pending.Stages, StageCurrent), nil
}

// beginRun creates the AWSPENDING placeholder version token and records the
// run, due now.
func (s *Service) beginRun(ctx context.Context, tx store.Tx, sec *store.Secret, st rotation.State, token, fnName string, mode rotation.Mode) error {
	v := store.Version{SecretARN: sec.ARN, VersionID: token, CreatedAt: s.now()}
	if err := tx.CreateVersion(ctx, v); err != nil {
		return internal("create version", err)
	}
	if err := tx.SetStage(ctx, sec.ARN, StagePending, token); err != nil {
		return internal("set label", err)
	}
	if st.Active() {
		// The run's function may already have moved AWSCURRENT to its version
		// (finishSecret) without the engine having recorded it yet.
		outcome := rotation.OutcomeAbandoned
		if v, err := tx.Version(ctx, sec.ARN, st.Token); err == nil && hasStage(v.Stages, StageCurrent) {
			outcome = rotation.OutcomeSucceeded
			if st.Mode == rotation.ModeRotate {
				sec.Rotation.LastRotatedAt = s.now()
			}
		}
		st = st.End(outcome, s.now())
	}
	sec.Rotation.StateJSON = st.Begin(token, fnName, mode, s.now()).Encode()
	sec.Rotation.WakeAt = s.now()
	sec.LastChangedAt = s.now()
	if err := tx.UpdateSecret(ctx, *sec); err != nil {
		return internal("update secret", err)
	}
	return nil
}

// reattempt wakes an unfinished rotation ("That rotation will be
// reattempted"): a run that gave up resumes now; an AWSPENDING version the
// engine has no run for (left by a client) becomes the run's version.
func (s *Service) reattempt(ctx context.Context, secretARN string) {
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := tx.Secret(ctx, secretARN)
		if err != nil {
			return err
		}
		st, err := rotation.DecodeState(sec.Rotation.StateJSON)
		if err != nil {
			return err
		}
		pending, busy, err := s.rotationInProgress(ctx, tx, sec)
		if err != nil || !busy || !sec.Rotation.Enabled {
			return err
		}
		if !st.Active() || st.Token != pending {
			fnName, _ := arn.ParseFunction(sec.Rotation.LambdaARN)
			if st.Active() {
				st = st.End(rotation.OutcomeAbandoned, s.now())
			}
			st = st.Begin(pending, fnName, rotation.ModeRotate, s.now())
		}
		st.Exhausted, st.Attempt = false, 0
		sec.Rotation.StateJSON = st.Encode()
		sec.Rotation.WakeAt = s.now()
		return tx.UpdateSecret(ctx, sec)
	})
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "reattempt rotation", "secret_arn", secretARN, "err", err)
		return
	}
	s.cfg.Kick()
}

// StartScheduledRotation starts a rotation with the stored configuration
// (the engine calls it when a scheduled window opens). It does nothing when
// rotation is disabled, the secret is scheduled for deletion, or a rotation
// is in progress.
func (s *Service) StartScheduledRotation(ctx context.Context, secretARN string) error {
	return s.write(ctx, func(tx store.Tx) error {
		sec, err := tx.Secret(ctx, secretARN)
		if err != nil {
			return err
		}
		if !sec.Rotation.Enabled || !sec.DeletedAt.IsZero() {
			return nil
		}
		st, err := rotation.DecodeState(sec.Rotation.StateJSON)
		if err != nil {
			return err
		}
		if st.Active() {
			return nil
		}
		fnName, _ := arn.ParseFunction(sec.Rotation.LambdaARN)
		pending, busy, err := s.rotationInProgress(ctx, tx, sec)
		if err != nil {
			return err
		}
		if busy {
			// An AWSPENDING version no run owns (left by a client, or by a
			// test rotation interrupted before its clean-up): resume it as
			// this rotation rather than stay stuck behind it.
			st = st.Begin(pending, fnName, rotation.ModeRotate, s.now())
			sec.Rotation.StateJSON = st.Encode()
			sec.Rotation.WakeAt = s.now()
			return tx.UpdateSecret(ctx, sec)
		}
		token, verr := newUUID(s.cfg.Rand)
		if verr != nil {
			return verr
		}
		return s.beginRun(ctx, tx, &sec, st, token, fnName, rotation.ModeRotate)
	})
}

// EndTestRotation removes the AWSPENDING placeholder of a test rotation.
func (s *Service) EndTestRotation(ctx context.Context, secretARN, token string) error {
	return s.write(ctx, func(tx store.Tx) error {
		v, err := tx.Version(ctx, secretARN, token)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if hasStage(v.Stages, StagePending) {
			if err := tx.RemoveStage(ctx, secretARN, StagePending); err != nil {
				return err
			}
		}
		if v.Sealed == nil && len(v.Stages) <= 1 {
			return tx.DeleteVersion(ctx, secretARN, token)
		}
		return nil
	})
}

// CancelRotateSecret turns rotation off. Labels are left as they are; the
// id of an unfinished AWSPENDING version is returned so the caller can
// clean it up, as AWS does.
func (s *Service) CancelRotateSecret(ctx context.Context, secretID string) (Ref, string, error) {
	var (
		ref     Ref
		pending string
	)
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := s.resolveLive(ctx, tx, secretID)
		if err != nil {
			return err
		}
		ref = Ref{ARN: sec.ARN, Name: sec.Name}
		if !sec.Rotation.Configured {
			return errorf(KindInvalidRequest, "Rotation is not configured for this secret.")
		}
		if id, busy, err := s.rotationInProgress(ctx, tx, sec); err != nil {
			return err
		} else if busy {
			pending = id
		}
		st, err := rotation.DecodeState(sec.Rotation.StateJSON)
		if err != nil {
			return internal("read rotation state", err)
		}
		if st.Active() {
			st = st.End(rotation.OutcomeCancelled, s.now())
		}
		sec.Rotation.StateJSON = st.Encode()
		sec.Rotation.Enabled = false
		sec.Rotation.WakeAt = time.Time{}
		sec.LastChangedAt = s.now()
		if err := tx.UpdateSecret(ctx, sec); err != nil {
			return internal("update secret", err)
		}
		return nil
	})
	return ref, pending, err
}

// abandonOrphanedRun ends a run whose AWSPENDING version lost its label (a
// manual update moved AWSCURRENT during the rotation) and records
// RotationAbandoned. It reports whether it did.
func (s *Service) abandonOrphanedRun(ctx context.Context, tx store.Tx, sec *store.Secret) (bool, error) {
	st, err := rotation.DecodeState(sec.Rotation.StateJSON)
	if err != nil || !st.Active() || st.Mode != rotation.ModeRotate {
		return false, nil
	}
	pending, err := tx.VersionByStage(ctx, sec.ARN, StagePending)
	if err == nil && pending.VersionID == st.Token {
		return false, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, internal("read label", err)
	}
	token := st.Token
	sec.Rotation.StateJSON = st.End(rotation.OutcomeAbandoned, s.now()).Encode()
	sec.Rotation.WakeAt = time.Time{}
	if sec.Rotation.Enabled && sec.Rotation.RulesJSON != "" {
		if wake, next, err := s.plan(sec.Rotation.RulesJSON, sec.Rotation.LastRotatedAt); err == nil {
			sec.Rotation.WakeAt, sec.Rotation.NextRotationAt = wake, next
		}
	}
	if err := tx.UpdateSecret(ctx, *sec); err != nil {
		return false, internal("update secret", err)
	}
	// Recorded inside the transaction: the store does not re-run fn, and an
	// abandoned run is worth an event even if the commit then failed.
	if s.cfg.Recorder != nil {
		s.cfg.Recorder.Record(ctx, rotation.Record{Type: rotation.EventAbandoned, Time: s.now(), SecretARN: sec.ARN, VersionID: token})
	}
	return true, nil
}

// RotationStatus returns a secret's rotation configuration, the run in
// progress and the recent runs (Rotor's GetRotationStatus; never a value).
func (s *Service) RotationStatus(ctx context.Context, secretID string) (RotationStatus, error) {
	var out RotationStatus
	err := s.view(ctx, secretID, false, func(tx store.Tx, sec store.Secret) error {
		d, err := s.describe(ctx, tx, sec)
		if err != nil {
			return err
		}
		st, err := rotation.DecodeState(sec.Rotation.StateJSON)
		if err != nil {
			return internal("read rotation state", err)
		}
		out = RotationStatus{
			ARN: sec.ARN, Name: sec.Name, RotationEnabled: sec.Rotation.Enabled,
			RotationLambdaARN: sec.Rotation.LambdaARN, RotationRules: d.RotationRules,
			LastRotatedDate: sec.Rotation.LastRotatedAt, NextRotationDate: d.NextRotationDate,
			History: st.History,
		}
		if st.Active() {
			cur := st
			cur.History = nil
			out.InProgress = &cur
		}
		return nil
	})
	return out, err
}
