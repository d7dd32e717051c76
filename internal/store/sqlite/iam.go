package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/rows"
)

const (
	qAccessKeysOf = `SELECT id, sealed_secret, principal_arn, active, created_ms FROM access_keys
		WHERE principal_arn = ? ORDER BY id`
	qDeleteAccessKey = `DELETE FROM access_keys WHERE id = ?`

	qUser       = `SELECT name, arn, user_id, created_ms FROM users WHERE name = ?`
	qCreateUser = `INSERT INTO users (name, arn, user_id, created_ms) VALUES (?, ?, ?, ?)`
	qDeleteUser = `DELETE FROM users WHERE name = ?`
	qListUsers  = `SELECT name, arn, user_id, created_ms FROM users WHERE name > ? ORDER BY name LIMIT ?`

	policyColumns = `name, arn, policy_id, description, document, created_ms, updated_ms`
	qPolicy       = `SELECT ` + policyColumns + ` FROM policies WHERE name = ?`
	qCreatePolicy = `INSERT INTO policies (` + policyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qUpdatePolicy = `UPDATE policies SET description = ?, document = ?, updated_ms = ? WHERE name = ?`
	qDeletePolicy = `DELETE FROM policies WHERE name = ?`
	qListPolicies = `SELECT ` + policyColumns + ` FROM policies WHERE name > ? ORDER BY name LIMIT ?`
	qAttach       = `INSERT INTO user_policies (user_name, policy_name) VALUES (?, ?)
		ON CONFLICT DO NOTHING`
	qDetach       = `DELETE FROM user_policies WHERE user_name = ? AND policy_name = ?`
	qUserPolicies = `SELECT p.name, p.arn, p.policy_id, p.description, p.document, p.created_ms, p.updated_ms
		FROM user_policies u JOIN policies p ON p.name = u.policy_name
		WHERE u.user_name = ? ORDER BY p.name`
	qPolicyUsers = `SELECT user_name FROM user_policies WHERE policy_name = ? ORDER BY user_name`

	qVersionCount = `SELECT count(*) FROM versions WHERE secret_arn = ?`

	qSecretStats = `SELECT coalesce(sum(deleted_ms = 0), 0), coalesce(sum(deleted_ms <> 0), 0),
		coalesce(sum(deleted_ms = 0 AND rotation_enabled = 1), 0),
		coalesce(sum(deleted_ms = 0 AND rotation_enabled = 1 AND next_rotation_ms <> 0 AND next_rotation_ms < ?), 0)
		FROM secrets`
)

// VersionCount counts the versions of the secret arn.
func (t *txn) VersionCount(ctx context.Context, arn string) (int, error) {
	return queryOne(ctx, t, "count versions", qVersionCount, func(sc scanner) (int, error) {
		var n int
		err := sc.Scan(&n)
		return n, err
	}, arn)
}

// SecretStats counts secrets by state.
func (t *txn) SecretStats(ctx context.Context, now time.Time) (store.SecretStats, error) {
	return queryOne(ctx, t, "secret stats", qSecretStats, func(sc scanner) (store.SecretStats, error) {
		var s store.SecretStats
		err := sc.Scan(&s.Live, &s.PendingDeletion, &s.RotationEnabled, &s.RotationOverdue)
		return s, err
	}, toMS(now))
}

// AccessKeysOf returns principalARN's access keys by id.
func (t *txn) AccessKeysOf(ctx context.Context, principalARN string) ([]store.AccessKey, error) {
	return queryAll(ctx, t, "list access keys", qAccessKeysOf, func(sc scanner) (store.AccessKey, error) {
		var k store.AccessKey
		var created int64
		err := sc.Scan(&k.ID, nullableBlob{&k.SealedSecret}, &k.PrincipalARN, &k.Active, &created)
		k.CreatedAt = fromMS(created)
		return k, err
	}, principalARN)
}

// DeleteAccessKey removes the access key id.
func (t *txn) DeleteAccessKey(ctx context.Context, id string) error {
	return t.execOne(ctx, "delete access key", qDeleteAccessKey, id)
}

// User returns the user name.
func (t *txn) User(ctx context.Context, name string) (store.User, error) {
	return queryOne(ctx, t, "read user", qUser, scanUser, name)
}

// CreateUser inserts u.
func (t *txn) CreateUser(ctx context.Context, u store.User) error {
	return t.execWrite(ctx, "create user", qCreateUser, u.Name, u.ARN, u.ID, toMS(u.CreatedAt))
}

// DeleteUser removes the user name and its attachments.
func (t *txn) DeleteUser(ctx context.Context, name string) error {
	return t.execOne(ctx, "delete user", qDeleteUser, name)
}

// ListUsers returns a page of users by name.
func (t *txn) ListUsers(ctx context.Context, after string, limit int) ([]store.User, error) {
	return queryAll(ctx, t, "list users", qListUsers, scanUser, after, limit)
}

// Policy returns the policy name.
func (t *txn) Policy(ctx context.Context, name string) (store.Policy, error) {
	return queryOne(ctx, t, "read policy", qPolicy, scanPolicy, name)
}

// CreatePolicy inserts p.
func (t *txn) CreatePolicy(ctx context.Context, p store.Policy) error {
	return t.execWrite(ctx, "create policy", qCreatePolicy,
		p.Name, p.ARN, p.ID, p.Description, p.Document, toMS(p.CreatedAt), toMS(p.UpdatedAt))
}

// UpdatePolicy rewrites p's document, description and update time.
func (t *txn) UpdatePolicy(ctx context.Context, p store.Policy) error {
	return t.execOne(ctx, "update policy", qUpdatePolicy, p.Description, p.Document, toMS(p.UpdatedAt), p.Name)
}

// DeletePolicy removes the policy name and its attachments.
func (t *txn) DeletePolicy(ctx context.Context, name string) error {
	return t.execOne(ctx, "delete policy", qDeletePolicy, name)
}

// ListPolicies returns a page of policies by name.
func (t *txn) ListPolicies(ctx context.Context, after string, limit int) ([]store.Policy, error) {
	return queryAll(ctx, t, "list policies", qListPolicies, scanPolicy, after, limit)
}

// AttachUserPolicy attaches policy to user.
func (t *txn) AttachUserPolicy(ctx context.Context, user, policy string) error {
	return t.execWrite(ctx, "attach policy", qAttach, user, policy)
}

// DetachUserPolicy detaches policy from user.
func (t *txn) DetachUserPolicy(ctx context.Context, user, policy string) error {
	return t.execOne(ctx, "detach policy", qDetach, user, policy)
}

// UserPolicies returns the policies attached to user.
func (t *txn) UserPolicies(ctx context.Context, user string) ([]store.Policy, error) {
	return queryAll(ctx, t, "list user policies", qUserPolicies, scanPolicy, user)
}

// PolicyUsers returns the users policy is attached to.
func (t *txn) PolicyUsers(ctx context.Context, policy string) ([]string, error) {
	return queryAll(ctx, t, "list policy users", qPolicyUsers, func(sc scanner) (string, error) {
		var s string
		err := sc.Scan(&s)
		return s, err
	}, policy)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner = rows.Scanner

// queryOne runs a read query expecting one row.
func queryOne[T any](ctx context.Context, t *txn, op, q string, scan func(scanner) (T, error), args ...any) (T, error) {
	var zero T
	if err := t.check(false); err != nil {
		return zero, err
	}
	row, err := t.queryRow(ctx, q, args...)
	if err != nil {
		return zero, fail(ctx, t.c, op, err)
	}
	v, err := scan(row)
	if err != nil {
		return zero, fail(ctx, t.c, op, err)
	}
	return v, nil
}

// queryAll runs a read query and scans every row.
func queryAll[T any](ctx context.Context, t *txn, op, q string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fail(ctx, t.c, op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fail(ctx, t.c, op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, t.c, op, err)
	}
	return out, nil
}

// execWrite runs a write statement.
func (t *txn) execWrite(ctx context.Context, op, q string, args ...any) error {
	if err := t.check(true); err != nil {
		return err
	}
	if _, err := t.exec(ctx, q, args...); err != nil {
		return fail(ctx, t.c, op, err)
	}
	return nil
}

// execOne runs a write statement that must change one row: ErrNotFound
// when it changed none.
func (t *txn) execOne(ctx context.Context, op, q string, args ...any) error {
	if err := t.check(true); err != nil {
		return err
	}
	n, err := t.exec(ctx, q, args...)
	if err != nil {
		return fail(ctx, t.c, op, err)
	}
	if n == 0 {
		return fail(ctx, t.c, op, sql.ErrNoRows)
	}
	return nil
}
