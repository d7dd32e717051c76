// Package rows maps the store's types to and from the SQL rows that both SQL
// backends (store/sqlite and store/postgres) lay out the same way: times as
// Unix milliseconds with 0 for unset, tags as a JSON array in insertion
// order, and the columns in the orders documented on each function.
package rows

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

// Scanner is a row: *sql.Row, *sql.Rows, pgx.Row or pgx.Rows.
type Scanner interface{ Scan(dest ...any) error }

// ToMS is t in Unix milliseconds, 0 for the zero time.
func ToMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMS undoes ToMS, in UTC.
func FromMS(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// ScanSecret reads a secret row: arn, name, description, kms_key_id, tags,
// resource_policy, created, last_changed, last_accessed, deleted, deletion,
// rotation_configured, rotation_enabled, rotation_lambda_arn,
// rotation_rules_json, last_rotated, next_rotation, rotation_state_json,
// rotation_wake.
func ScanSecret(sc Scanner) (store.Secret, error) {
	var (
		s                                                               store.Secret
		tags                                                            string
		created, changed, accessed, deleted, deletion, rotd, next, wake int64
	)
	err := sc.Scan(&s.ARN, &s.Name, &s.Description, &s.KMSKeyID, &tags, &s.ResourcePolicy,
		&created, &changed, &accessed, &deleted, &deletion,
		&s.Rotation.Configured, &s.Rotation.Enabled, &s.Rotation.LambdaARN, &s.Rotation.RulesJSON,
		&rotd, &next, &s.Rotation.StateJSON, &wake)
	if err != nil {
		return store.Secret{}, err
	}
	s.CreatedAt, s.LastChangedAt, s.LastAccessedAt = FromMS(created), FromMS(changed), FromMS(accessed)
	s.DeletedAt, s.DeletionDate = FromMS(deleted), FromMS(deletion)
	s.Rotation.LastRotatedAt, s.Rotation.NextRotationAt = FromMS(rotd), FromMS(next)
	s.Rotation.WakeAt = FromMS(wake)
	if tags != "[]" {
		if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
			return store.Secret{}, fmt.Errorf("store: secret %s: corrupt tags: %v", s.ARN, err)
		}
	}
	return s, nil
}

// SecretArgs binds s to the columns of ScanSecret, in the same order.
func SecretArgs(s store.Secret) ([]any, error) {
	tags := "[]"
	if len(s.Tags) > 0 {
		b, err := json.Marshal(s.Tags)
		if err != nil {
			return nil, fmt.Errorf("store: encode tags: %v", err)
		}
		tags = string(b)
	}
	return []any{
		s.ARN, s.Name, s.Description, s.KMSKeyID, tags, s.ResourcePolicy,
		ToMS(s.CreatedAt), ToMS(s.LastChangedAt), ToMS(s.LastAccessedAt), ToMS(s.DeletedAt), ToMS(s.DeletionDate),
		s.Rotation.Configured, s.Rotation.Enabled, s.Rotation.LambdaARN, s.Rotation.RulesJSON,
		ToMS(s.Rotation.LastRotatedAt), ToMS(s.Rotation.NextRotationAt), s.Rotation.StateJSON,
		ToMS(s.Rotation.WakeAt),
	}, nil
}

// ScanUser reads name, arn, user_id, created.
func ScanUser(sc Scanner) (store.User, error) {
	var u store.User
	var created int64
	err := sc.Scan(&u.Name, &u.ARN, &u.ID, &created)
	u.CreatedAt = FromMS(created)
	return u, err
}

// ScanPolicy reads name, arn, policy_id, description, document, created,
// updated.
func ScanPolicy(sc Scanner) (store.Policy, error) {
	var p store.Policy
	var created, updated int64
	err := sc.Scan(&p.Name, &p.ARN, &p.ID, &p.Description, &p.Document, &created, &updated)
	p.CreatedAt, p.UpdatedAt = FromMS(created), FromMS(updated)
	return p, err
}

// ScanOutbox reads seq, target, event_id, body, created, attempts, next,
// parked, last_error.
func ScanOutbox(sc Scanner) (store.OutboxEntry, error) {
	var e store.OutboxEntry
	var created, next int64
	err := sc.Scan(&e.Seq, &e.Target, &e.EventID, &e.Body, &created, &e.Attempts, &next, &e.Parked, &e.LastError)
	e.CreatedAt, e.NextAttemptAt = FromMS(created), FromMS(next)
	return e, err
}
