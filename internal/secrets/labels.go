package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Label-change reporting. Every write transaction of the service goes
// through write, which hands fn a labelTx: a store.Tx that notes, before
// the first change of each (secret, label) in the transaction, which
// version held the label. After fn succeeds it compares with the holders
// at the end, so a call reports each label's net move once, however many
// store calls made it (attach's AWSPREVIOUS and AWSPENDING side effects,
// RotateSecret's placeholder, EndTestRotation's removal, versions and
// secrets deleted with their labels), and a label put back where it was
// is not reported. Config.OnLabelChange is called only once the store
// says the transaction committed.
//
// On a store several nodes share (store.Publisher), each change is also
// published in the transaction, as JSON under LabelTopic, so that the
// other nodes' push streams carry it: they hear it if, and only if, it
// committed.

// LabelTopic is the store notice topic of a label change; the payload is
// an events.LabelChange in JSON (DecodeLabelChange).
const LabelTopic = "labels"

// DecodeLabelChange reads a LabelTopic payload.
func DecodeLabelChange(payload string) (events.LabelChange, error) {
	var c events.LabelChange
	err := json.Unmarshal([]byte(payload), &c)
	return c, err
}

// write runs fn in a write transaction and reports the labels it moved.
func (s *Service) write(ctx context.Context, fn func(store.Tx) error) error {
	if s.cfg.OnLabelChange == nil {
		return s.cfg.Store.Write(ctx, fn)
	}
	var changes []events.LabelChange
	err := s.cfg.Store.Write(ctx, func(tx store.Tx) error {
		changes = nil // in case a store ever runs fn again
		lt := &labelTx{Tx: tx}
		if err := fn(lt); err != nil {
			return err
		}
		var err error
		if changes, err = lt.changes(ctx, s.now()); err != nil {
			return internal("read labels", err)
		}
		if p, ok := tx.(store.Publisher); ok {
			for _, c := range changes {
				b, err := json.Marshal(c)
				if err != nil {
					return internal("encode label change", err)
				}
				if err := p.Publish(ctx, LabelTopic, string(b)); err != nil {
					return internal("publish label change", err)
				}
			}
		}
		return nil
	})
	if err == nil && len(changes) > 0 {
		s.cfg.OnLabelChange(ctx, changes)
	}
	return err
}

type labelKey struct{ arn, label string }

// labelTx records the label holders a transaction is about to change.
type labelTx struct {
	store.Tx
	before map[labelKey]string // version holding the label before; "" none
	order  []labelKey          // in the order the transaction changed them
	names  map[string]string   // secret ARN → name
}

// note records the holder of label before its first change.
func (t *labelTx) note(ctx context.Context, arn, label string) error {
	k := labelKey{arn, label}
	if _, ok := t.before[k]; ok {
		return nil
	}
	v, err := t.Tx.VersionByStage(ctx, arn, label)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, ok := t.names[arn]; !ok {
		sec, err := t.Tx.Secret(ctx, arn)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if t.names == nil {
			t.names = make(map[string]string)
		}
		t.names[arn] = sec.Name
	}
	if t.before == nil {
		t.before = make(map[labelKey]string)
	}
	t.before[k] = v.VersionID
	t.order = append(t.order, k)
	return nil
}

// noteVersions records the labels of the given versions (all of the
// secret's when versionID is "").
func (t *labelTx) noteVersions(ctx context.Context, arn, versionID string) error {
	var vers []store.Version
	if versionID == "" {
		var err error
		if vers, err = t.Tx.Versions(ctx, arn); err != nil {
			return err
		}
	} else {
		v, err := t.Tx.Version(ctx, arn, versionID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		vers = []store.Version{v}
	}
	for _, v := range vers {
		for _, label := range v.Stages {
			if err := t.note(ctx, arn, label); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *labelTx) SetStage(ctx context.Context, arn, stage, versionID string) error {
	if err := t.note(ctx, arn, stage); err != nil {
		return err
	}
	return t.Tx.SetStage(ctx, arn, stage, versionID)
}

func (t *labelTx) RemoveStage(ctx context.Context, arn, stage string) error {
	if err := t.note(ctx, arn, stage); err != nil {
		return err
	}
	return t.Tx.RemoveStage(ctx, arn, stage)
}

func (t *labelTx) DeleteVersion(ctx context.Context, arn, versionID string) error {
	if err := t.noteVersions(ctx, arn, versionID); err != nil {
		return err
	}
	return t.Tx.DeleteVersion(ctx, arn, versionID)
}

func (t *labelTx) DeleteSecret(ctx context.Context, arn string) error {
	if err := t.noteVersions(ctx, arn, ""); err != nil {
		return err
	}
	return t.Tx.DeleteSecret(ctx, arn)
}

// changes compares the noted holders with the current ones.
func (t *labelTx) changes(ctx context.Context, now time.Time) ([]events.LabelChange, error) {
	var out []events.LabelChange
	for _, k := range t.order {
		v, err := t.Tx.VersionByStage(ctx, k.arn, k.label)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if from := t.before[k]; v.VersionID != from {
			out = append(out, events.LabelChange{
				SecretARN: k.arn, Name: t.names[k.arn], Label: k.label,
				VersionID: v.VersionID, FromVersionID: from, Time: now,
			})
		}
	}
	return out, nil
}
