package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/rows"
)

var _ store.Tx = (*txn)(nil)

// txn is a store.Tx on one pgx transaction.
type txn struct {
	tx    pgx.Tx
	write bool
	done  bool
	id    string // the Store's, for Publish

	published []published // sent before COMMIT (flushPublished)
}

const secretColumns = `arn, name, description, kms_key_id, tags, resource_policy,
	created_ms, last_changed_ms, last_accessed_ms, deleted_ms, deletion_ms,
	rotation_configured, rotation_enabled, rotation_lambda_arn, rotation_rules_json,
	last_rotated_ms, next_rotation_ms, rotation_state_json, rotation_wake_ms`

// stagesColumn is a version's labels in byte order; NULL when none.
const stagesColumn = `(SELECT array_agg(l.stage ORDER BY l.stage)
	FROM labels l WHERE l.secret_arn = v.secret_arn AND l.version_id = v.version_id)`

const (
	qSecret       = `SELECT ` + secretColumns + ` FROM secrets WHERE arn = $1`
	qSecretByName = `SELECT ` + secretColumns + ` FROM secrets WHERE name = $1`
	qCreateSecret = `INSERT INTO secrets (` + secretColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`
	qUpdateSecret = `UPDATE secrets SET name = $2, description = $3, kms_key_id = $4, tags = $5,
		resource_policy = $6, created_ms = $7, last_changed_ms = $8, last_accessed_ms = $9,
		deleted_ms = $10, deletion_ms = $11, rotation_configured = $12, rotation_enabled = $13,
		rotation_lambda_arn = $14, rotation_rules_json = $15, last_rotated_ms = $16,
		next_rotation_ms = $17, rotation_state_json = $18, rotation_wake_ms = $19
		WHERE arn = $1`
	qDeleteSecret  = `DELETE FROM secrets WHERE arn = $1`
	qDeletedBefore = `SELECT arn FROM secrets WHERE deletion_ms <> 0 AND deletion_ms <= $1
		ORDER BY deletion_ms, arn LIMIT $2`
	qRotationsDue = `SELECT arn FROM secrets WHERE rotation_wake_ms <> 0 AND rotation_wake_ms <= $1
		ORDER BY rotation_wake_ms, arn LIMIT $2`

	qVersions = `SELECT v.version_id, v.created_ms, v.last_accessed_ms, v.key_id, v.is_binary, ` + stagesColumn + `
		FROM versions v WHERE v.secret_arn = $1 ORDER BY v.created_ms, v.seq`
	qVersion = `SELECT v.version_id, v.created_ms, v.last_accessed_ms, v.sealed, v.key_id, v.is_binary, ` + stagesColumn + `
		FROM versions v WHERE v.secret_arn = $1 AND v.version_id = $2`
	qVersionByStage = `SELECT v.version_id, v.created_ms, v.last_accessed_ms, v.sealed, v.key_id, v.is_binary, ` + stagesColumn + `
		FROM labels s JOIN versions v ON v.secret_arn = s.secret_arn AND v.version_id = s.version_id
		WHERE s.secret_arn = $1 AND s.stage = $2`
	qCreateVersion = `INSERT INTO versions (secret_arn, version_id, created_ms, last_accessed_ms, sealed, key_id, is_binary)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qUpdateVersion = `UPDATE versions SET sealed = $1, key_id = $2, is_binary = $3, last_accessed_ms = $4
		WHERE secret_arn = $5 AND version_id = $6`
	qDeleteVersion = `DELETE FROM versions WHERE secret_arn = $1 AND version_id = $2`
	qSetStage      = `INSERT INTO labels (secret_arn, stage, version_id) VALUES ($1, $2, $3)
		ON CONFLICT (secret_arn, stage) DO UPDATE SET version_id = excluded.version_id`
	qRemoveStage  = `DELETE FROM labels WHERE secret_arn = $1 AND stage = $2`
	qVersionCount = `SELECT count(*) FROM versions WHERE secret_arn = $1`
	qSecretStats  = `SELECT count(*) FILTER (WHERE deleted_ms = 0), count(*) FILTER (WHERE deleted_ms <> 0),
		count(*) FILTER (WHERE deleted_ms = 0 AND rotation_enabled),
		count(*) FILTER (WHERE deleted_ms = 0 AND rotation_enabled AND next_rotation_ms <> 0 AND next_rotation_ms < $1)
		FROM secrets`

	qAccessKey    = `SELECT id, sealed_secret, principal_arn, active, created_ms FROM access_keys WHERE id = $1`
	qPutAccessKey = `INSERT INTO access_keys (id, sealed_secret, principal_arn, active, created_ms)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
		principal_arn = excluded.principal_arn, active = excluded.active, created_ms = excluded.created_ms`
	qAccessKeysOf = `SELECT id, sealed_secret, principal_arn, active, created_ms FROM access_keys
		WHERE principal_arn = $1 ORDER BY id`
	qAllAccessKeys = `SELECT id, sealed_secret, principal_arn, active, created_ms FROM access_keys
		WHERE id > $1 ORDER BY id LIMIT $2`
	qDeleteAccessKey = `DELETE FROM access_keys WHERE id = $1`

	qMeta    = `SELECT value FROM meta WHERE key = $1`
	qPutMeta = `INSERT INTO meta (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`

	qUser       = `SELECT name, arn, user_id, created_ms FROM users WHERE name = $1`
	qCreateUser = `INSERT INTO users (name, arn, user_id, created_ms) VALUES ($1, $2, $3, $4)`
	qDeleteUser = `DELETE FROM users WHERE name = $1`
	qListUsers  = `SELECT name, arn, user_id, created_ms FROM users WHERE name > $1 ORDER BY name LIMIT $2`

	policyColumns = `name, arn, policy_id, description, document, created_ms, updated_ms`
	qPolicy       = `SELECT ` + policyColumns + ` FROM policies WHERE name = $1`
	qCreatePolicy = `INSERT INTO policies (` + policyColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qUpdatePolicy = `UPDATE policies SET description = $1, document = $2, updated_ms = $3 WHERE name = $4`
	qDeletePolicy = `DELETE FROM policies WHERE name = $1`
	qListPolicies = `SELECT ` + policyColumns + ` FROM policies WHERE name > $1 ORDER BY name LIMIT $2`
	qAttach       = `INSERT INTO user_policies (user_name, policy_name) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	qDetach       = `DELETE FROM user_policies WHERE user_name = $1 AND policy_name = $2`
	qUserPolicies = `SELECT p.name, p.arn, p.policy_id, p.description, p.document, p.created_ms, p.updated_ms
		FROM user_policies u JOIN policies p ON p.name = u.policy_name
		WHERE u.user_name = $1 ORDER BY p.name`
	qPolicyUsers = `SELECT user_name FROM user_policies WHERE policy_name = $1 ORDER BY user_name`

	outboxColumns = `seq, target, event_id, body, created_ms, attempts, next_ms, parked, last_error`
	qAddOutbox    = `INSERT INTO outbox (target, event_id, body, created_ms, attempts, next_ms, parked, last_error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`
	qOutboxDue = `SELECT ` + outboxColumns + ` FROM outbox WHERE NOT parked AND next_ms <= $1
		ORDER BY next_ms, seq LIMIT $2`
	qUpdateOutbox = `UPDATE outbox SET attempts = $1, next_ms = $2, parked = $3, last_error = $4 WHERE seq = $5`
	qDeleteOutbox = `DELETE FROM outbox WHERE seq = $1`
	qListOutbox   = `SELECT ` + outboxColumns + ` FROM outbox WHERE parked = $1 AND seq > $2
		ORDER BY seq LIMIT $3`
	qOutboxCounts = `SELECT count(*) FILTER (WHERE NOT parked), count(*) FILTER (WHERE parked) FROM outbox`

	qMasterKeys   = `SELECT id, wrapped, state, created_ms, retired_ms, family FROM master_keys ORDER BY created_ms, id`
	qPutMasterKey = `INSERT INTO master_keys (id, wrapped, state, created_ms, retired_ms, family) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET wrapped = excluded.wrapped, state = excluded.state,
			created_ms = excluded.created_ms, retired_ms = excluded.retired_ms, family = excluded.family`
	qKMSKeys   = `SELECT id, alias, description, enabled, created_ms FROM kms_keys ORDER BY created_ms, id`
	qPutKMSKey = `INSERT INTO kms_keys (id, alias, description, enabled, created_ms) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET alias = excluded.alias, description = excluded.description,
			enabled = excluded.enabled, created_ms = excluded.created_ms`
	sealedVersionColumns       = `secret_arn, version_id, created_ms, last_accessed_ms, sealed, key_id, is_binary`
	qSealedVersionsNotUnderAny = `SELECT ` + sealedVersionColumns + `
		FROM versions WHERE (secret_arn, version_id) > ($1, $2) AND sealed IS NOT NULL
			AND key_id <> ALL($3::text[])
		ORDER BY secret_arn, version_id LIMIT $4`
	qSealedVersionsNotUnder = `SELECT ` + sealedVersionColumns + `
		FROM versions WHERE (secret_arn, version_id) > ($1, $2) AND sealed IS NOT NULL AND key_id <> $3
		ORDER BY secret_arn, version_id LIMIT $4`
	qKeyUsage = `SELECT key_id, count(*) FROM versions WHERE sealed IS NOT NULL GROUP BY key_id`
)

// check admits a call: tx must still be running, ctx alive, and write
// methods need a read-write transaction.
func (t *txn) check(ctx context.Context, write bool) error {
	if t.done {
		return errTxDone
	}
	if write && !t.write {
		return errReadOnly
	}
	return ctx.Err()
}

// fail maps a driver error to the store's errors, naming op.
func fail(op string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return fmt.Errorf("postgres: %s: %w (%s)", op, store.ErrConflict, pgErr.ConstraintName)
	case errors.As(err, &pgErr) && pgErr.Code == "23503":
		return fmt.Errorf("postgres: %s: %w (%s)", op, store.ErrNotFound, pgErr.ConstraintName)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

type scanner = rows.Scanner

func queryOne[T any](ctx context.Context, t *txn, op, q string, scan func(scanner) (T, error), args ...any) (T, error) {
	var zero T
	if err := t.check(ctx, false); err != nil {
		return zero, err
	}
	v, err := scan(t.tx.QueryRow(ctx, q, args...))
	if err != nil {
		return zero, fail(op, err)
	}
	return v, nil
}

func queryAll[T any](ctx context.Context, t *txn, op, q string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	if err := t.check(ctx, false); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, fail(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fail(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// exec runs a write statement and returns how many rows it changed.
// guarded statements (those that may fail with a unique or foreign-key
// violation) run in a savepoint, so that such a failure leaves the
// transaction usable.
func (t *txn) exec(ctx context.Context, op string, guarded bool, q string, args ...any) (int64, error) {
	if err := t.check(ctx, true); err != nil {
		return 0, err
	}
	if !guarded {
		tag, err := t.tx.Exec(ctx, q, args...)
		if err != nil {
			return 0, fail(op, err)
		}
		return tag.RowsAffected(), nil
	}
	// The savepoint, the statement and the release in one round trip.
	b := &pgx.Batch{}
	b.Queue(`SAVEPOINT rotor_guard`)
	b.Queue(q, args...)
	b.Queue(`RELEASE SAVEPOINT rotor_guard`)
	br := t.tx.SendBatch(ctx, b)
	_, spErr := br.Exec()
	tag, err := br.Exec()
	_, relErr := br.Exec()
	closeErr := br.Close()
	switch {
	case spErr != nil:
		return 0, fail(op, spErr)
	case err != nil:
		// The statement failed and the release with it: back to the
		// savepoint, and the transaction is usable again.
		if _, rbErr := t.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT rotor_guard`); rbErr != nil {
			return 0, fail(op, errors.Join(err, rbErr))
		}
		if _, rbErr := t.tx.Exec(ctx, `RELEASE SAVEPOINT rotor_guard`); rbErr != nil {
			return 0, fail(op, errors.Join(err, rbErr))
		}
		return 0, fail(op, err)
	case relErr != nil:
		return 0, fail(op, relErr)
	case closeErr != nil:
		return 0, fail(op, closeErr)
	}
	return tag.RowsAffected(), nil
}

// execOne is exec for a statement that must change a row: ErrNotFound if
// it changed none.
func (t *txn) execOne(ctx context.Context, op string, guarded bool, q string, args ...any) error {
	n, err := t.exec(ctx, op, guarded, q, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

func (t *txn) Secret(ctx context.Context, arn string) (store.Secret, error) {
	return queryOne(ctx, t, "read secret", qSecret, scanSecret, arn)
}

func (t *txn) SecretByName(ctx context.Context, name string) (store.Secret, error) {
	return queryOne(ctx, t, "read secret by name", qSecretByName, scanSecret, name)
}

// listQuery is a keyset-paginated walk of an index on (col, arn).
func listQuery(col string, desc, after, deleted bool) string {
	q := "SELECT " + secretColumns + " FROM secrets WHERE TRUE"
	if !deleted {
		q += " AND deleted_ms = 0"
	}
	cmp, dir := ">", "ASC"
	if desc {
		cmp, dir = "<", "DESC"
	}
	n := 1
	if after {
		q += fmt.Sprintf(" AND (%s, arn) %s ($1, $2)", col, cmp)
		n = 3
	}
	return q + fmt.Sprintf(" ORDER BY %s %s, arn %s LIMIT $%d", col, dir, dir, n)
}

var sortColumns = map[store.SortBy]string{
	store.SortByCreated:      "created_ms",
	store.SortByName:         "name",
	store.SortByLastChanged:  "last_changed_ms",
	store.SortByLastAccessed: "last_accessed_ms",
}

func (t *txn) ListSecrets(ctx context.Context, q store.ListQuery) ([]store.Secret, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("postgres: list secrets: limit %d is not positive", q.Limit)
	}
	col, ok := sortColumns[q.SortBy]
	if !ok {
		return nil, fmt.Errorf("postgres: list secrets: unknown order %q", q.SortBy)
	}
	args := make([]any, 0, 3)
	if q.After != nil {
		if q.SortBy == store.SortByName {
			args = append(args, q.After.Name)
		} else {
			args = append(args, toMS(q.After.Time))
		}
		args = append(args, q.After.ARN)
	}
	args = append(args, q.Limit)
	return queryAll(ctx, t, "list secrets", listQuery(col, q.Descending, q.After != nil, q.IncludeDeleted), scanSecret, args...)
}

func (t *txn) CreateSecret(ctx context.Context, s store.Secret) error {
	args, err := secretArgs(s)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, "create secret", true, qCreateSecret, args...)
	return err
}

func (t *txn) UpdateSecret(ctx context.Context, s store.Secret) error {
	args, err := secretArgs(s)
	if err != nil {
		return err
	}
	return t.execOne(ctx, "update secret", true, qUpdateSecret, args...)
}

func (t *txn) DeleteSecret(ctx context.Context, arn string) error {
	return t.execOne(ctx, "delete secret", false, qDeleteSecret, arn)
}

func (t *txn) DeletedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return t.arnsDue(ctx, qDeletedBefore, "deleted before", before, limit)
}

func (t *txn) RotationsDue(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return t.arnsDue(ctx, qRotationsDue, "rotations due", before, limit)
}

func (t *txn) arnsDue(ctx context.Context, q, op string, before time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("postgres: %s: limit %d is not positive", op, limit)
	}
	return queryAll(ctx, t, op, q, scanString, toMS(before), limit)
}

// scanBytesString reads a BYTEA column as a string of its bytes.
func scanBytesString(sc scanner) (string, error) {
	var b []byte
	err := sc.Scan(&b)
	return string(b), err
}

func scanString(sc scanner) (string, error) {
	var s string
	err := sc.Scan(&s)
	return s, err
}

func (t *txn) SecretStats(ctx context.Context, now time.Time) (store.SecretStats, error) {
	return queryOne(ctx, t, "secret stats", qSecretStats, func(sc scanner) (store.SecretStats, error) {
		var s store.SecretStats
		err := sc.Scan(&s.Live, &s.PendingDeletion, &s.RotationEnabled, &s.RotationOverdue)
		return s, err
	}, toMS(now))
}

func (t *txn) Versions(ctx context.Context, arn string) ([]store.Version, error) {
	return queryAll(ctx, t, "list versions", qVersions, func(sc scanner) (store.Version, error) {
		v := store.Version{SecretARN: arn}
		var created, accessed int64
		err := sc.Scan(&v.VersionID, &created, &accessed, &v.KeyID, &v.Binary, &v.Stages)
		v.CreatedAt, v.LastAccessedAt = fromMS(created), fromMS(accessed)
		return v, err
	}, arn)
}

func (t *txn) VersionCount(ctx context.Context, arn string) (int, error) {
	return queryOne(ctx, t, "count versions", qVersionCount, func(sc scanner) (int, error) {
		var n int
		err := sc.Scan(&n)
		return n, err
	}, arn)
}

func (t *txn) Version(ctx context.Context, arn, versionID string) (store.Version, error) {
	return queryOne(ctx, t, "read version", qVersion, scanVersion(arn), arn, versionID)
}

func (t *txn) VersionByStage(ctx context.Context, arn, stage string) (store.Version, error) {
	return queryOne(ctx, t, "read version by stage", qVersionByStage, scanVersion(arn), arn, stage)
}

func scanVersion(arn string) func(scanner) (store.Version, error) {
	return func(sc scanner) (store.Version, error) {
		v := store.Version{SecretARN: arn}
		var created, accessed int64
		err := sc.Scan(&v.VersionID, &created, &accessed, &v.Sealed, &v.KeyID, &v.Binary, &v.Stages)
		v.CreatedAt, v.LastAccessedAt = fromMS(created), fromMS(accessed)
		return v, err
	}
}

func (t *txn) CreateVersion(ctx context.Context, v store.Version) error {
	_, err := t.exec(ctx, "create version", true, qCreateVersion, v.SecretARN, v.VersionID, toMS(v.CreatedAt),
		toMS(v.LastAccessedAt), v.Sealed, v.KeyID, v.Binary)
	return err
}

func (t *txn) UpdateVersion(ctx context.Context, v store.Version) error {
	return t.execOne(ctx, "update version", false, qUpdateVersion, v.Sealed, v.KeyID, v.Binary,
		toMS(v.LastAccessedAt), v.SecretARN, v.VersionID)
}

func (t *txn) DeleteVersion(ctx context.Context, arn, versionID string) error {
	return t.execOne(ctx, "delete version", false, qDeleteVersion, arn, versionID)
}

func (t *txn) SetStage(ctx context.Context, arn, stage, versionID string) error {
	_, err := t.exec(ctx, "set stage", true, qSetStage, arn, stage, versionID)
	return err
}

func (t *txn) RemoveStage(ctx context.Context, arn, stage string) error {
	_, err := t.exec(ctx, "remove stage", false, qRemoveStage, arn, stage)
	return err
}

func scanAccessKey(sc scanner) (store.AccessKey, error) {
	var k store.AccessKey
	var created int64
	err := sc.Scan(&k.ID, &k.SealedSecret, &k.PrincipalARN, &k.Active, &created)
	k.CreatedAt = fromMS(created)
	return k, err
}

func (t *txn) AccessKey(ctx context.Context, id string) (store.AccessKey, error) {
	return queryOne(ctx, t, "read access key", qAccessKey, scanAccessKey, id)
}

func (t *txn) PutAccessKey(ctx context.Context, k store.AccessKey) error {
	_, err := t.exec(ctx, "put access key", false, qPutAccessKey, k.ID, k.SealedSecret, k.PrincipalARN, k.Active, toMS(k.CreatedAt))
	return err
}

func (t *txn) AccessKeysOf(ctx context.Context, principalARN string) ([]store.AccessKey, error) {
	return queryAll(ctx, t, "list access keys", qAccessKeysOf, scanAccessKey, principalARN)
}

func (t *txn) DeleteAccessKey(ctx context.Context, id string) error {
	return t.execOne(ctx, "delete access key", false, qDeleteAccessKey, id)
}

func (t *txn) AllAccessKeys(ctx context.Context, after string, limit int) ([]store.AccessKey, error) {
	return queryAll(ctx, t, "list all access keys", qAllAccessKeys, scanAccessKey, after, limit)
}

func (t *txn) User(ctx context.Context, name string) (store.User, error) {
	return queryOne(ctx, t, "read user", qUser, scanUser, name)
}

func (t *txn) CreateUser(ctx context.Context, u store.User) error {
	_, err := t.exec(ctx, "create user", true, qCreateUser, u.Name, u.ARN, u.ID, toMS(u.CreatedAt))
	return err
}

func (t *txn) DeleteUser(ctx context.Context, name string) error {
	return t.execOne(ctx, "delete user", false, qDeleteUser, name)
}

func (t *txn) ListUsers(ctx context.Context, after string, limit int) ([]store.User, error) {
	return queryAll(ctx, t, "list users", qListUsers, scanUser, after, limit)
}

func (t *txn) Policy(ctx context.Context, name string) (store.Policy, error) {
	return queryOne(ctx, t, "read policy", qPolicy, scanPolicy, name)
}

func (t *txn) CreatePolicy(ctx context.Context, p store.Policy) error {
	_, err := t.exec(ctx, "create policy", true, qCreatePolicy,
		p.Name, p.ARN, p.ID, p.Description, p.Document, toMS(p.CreatedAt), toMS(p.UpdatedAt))
	return err
}

func (t *txn) UpdatePolicy(ctx context.Context, p store.Policy) error {
	return t.execOne(ctx, "update policy", false, qUpdatePolicy, p.Description, p.Document, toMS(p.UpdatedAt), p.Name)
}

func (t *txn) DeletePolicy(ctx context.Context, name string) error {
	return t.execOne(ctx, "delete policy", false, qDeletePolicy, name)
}

func (t *txn) ListPolicies(ctx context.Context, after string, limit int) ([]store.Policy, error) {
	return queryAll(ctx, t, "list policies", qListPolicies, scanPolicy, after, limit)
}

func (t *txn) AttachUserPolicy(ctx context.Context, user, policy string) error {
	_, err := t.exec(ctx, "attach policy", true, qAttach, user, policy)
	return err
}

func (t *txn) DetachUserPolicy(ctx context.Context, user, policy string) error {
	return t.execOne(ctx, "detach policy", false, qDetach, user, policy)
}

func (t *txn) UserPolicies(ctx context.Context, user string) ([]store.Policy, error) {
	return queryAll(ctx, t, "list user policies", qUserPolicies, scanPolicy, user)
}

func (t *txn) PolicyUsers(ctx context.Context, policy string) ([]string, error) {
	return queryAll(ctx, t, "list policy users", qPolicyUsers, scanString, policy)
}

func (t *txn) AddOutbox(ctx context.Context, entries []store.OutboxEntry) error {
	if err := t.check(ctx, true); err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		err := t.tx.QueryRow(ctx, qAddOutbox, e.Target, e.EventID, e.Body, toMS(e.CreatedAt), e.Attempts,
			toMS(e.NextAttemptAt), e.Parked, e.LastError).Scan(&e.Seq)
		if err != nil {
			return fail("add outbox", err)
		}
	}
	return nil
}

func (t *txn) OutboxDue(ctx context.Context, at time.Time, limit int) ([]store.OutboxEntry, error) {
	return queryAll(ctx, t, "outbox due", qOutboxDue, scanOutbox, toMS(at), limit)
}

func (t *txn) UpdateOutbox(ctx context.Context, e store.OutboxEntry) error {
	return t.execOne(ctx, "update outbox", false, qUpdateOutbox, e.Attempts, toMS(e.NextAttemptAt), e.Parked, e.LastError, e.Seq)
}

func (t *txn) DeleteOutbox(ctx context.Context, seq int64) error {
	return t.execOne(ctx, "delete outbox", false, qDeleteOutbox, seq)
}

func (t *txn) ListOutbox(ctx context.Context, parked bool, after int64, limit int) ([]store.OutboxEntry, error) {
	return queryAll(ctx, t, "list outbox", qListOutbox, scanOutbox, parked, after, limit)
}

func (t *txn) OutboxCounts(ctx context.Context) (pending, parked int, err error) {
	c, err := queryOne(ctx, t, "count outbox", qOutboxCounts, func(sc scanner) ([2]int, error) {
		var c [2]int
		err := sc.Scan(&c[0], &c[1])
		return c, err
	})
	return c[0], c[1], err
}

func (t *txn) MasterKeys(ctx context.Context) ([]store.MasterKeyVersion, error) {
	return queryAll(ctx, t, "list master keys", qMasterKeys, func(sc scanner) (store.MasterKeyVersion, error) {
		var k store.MasterKeyVersion
		var created, retired int64
		var state string
		err := sc.Scan(&k.ID, &k.Wrapped, &state, &created, &retired, &k.Family)
		k.State, k.CreatedAt, k.RetiredAt = store.KeyState(state), fromMS(created), fromMS(retired)
		return k, err
	})
}

func (t *txn) PutMasterKey(ctx context.Context, k store.MasterKeyVersion) error {
	_, err := t.exec(ctx, "put master key", true, qPutMasterKey,
		k.ID, k.Wrapped, string(k.State), toMS(k.CreatedAt), toMS(k.RetiredAt), k.Family)
	return err
}

func (t *txn) KMSKeys(ctx context.Context) ([]store.KMSKey, error) {
	return queryAll(ctx, t, "list kms keys", qKMSKeys, func(sc scanner) (store.KMSKey, error) {
		var k store.KMSKey
		var alias *string
		var created int64
		err := sc.Scan(&k.ID, &alias, &k.Description, &k.Enabled, &created)
		if alias != nil {
			k.Alias = *alias
		}
		k.CreatedAt = fromMS(created)
		return k, err
	})
}

func (t *txn) PutKMSKey(ctx context.Context, k store.KMSKey) error {
	var alias *string
	if k.Alias != "" {
		alias = &k.Alias
	}
	_, err := t.exec(ctx, "put kms key", true, qPutKMSKey, k.ID, alias, k.Description, k.Enabled, toMS(k.CreatedAt))
	return err
}

func scanSealedVersion(sc scanner) (store.Version, error) {
	var v store.Version
	var created, accessed int64
	err := sc.Scan(&v.SecretARN, &v.VersionID, &created, &accessed, &v.Sealed, &v.KeyID, &v.Binary)
	v.CreatedAt, v.LastAccessedAt = fromMS(created), fromMS(accessed)
	return v, err
}

func (t *txn) SealedVersionsNotUnder(ctx context.Context, keyID, afterARN, afterVersionID string, limit int) ([]store.Version, error) {
	return queryAll(ctx, t, "list versions to re-wrap", qSealedVersionsNotUnder, scanSealedVersion,
		afterARN, afterVersionID, keyID, limit)
}

func (t *txn) SealedVersionsNotUnderAny(ctx context.Context, keyIDs []string, afterARN, afterVersionID string, limit int) ([]store.Version, error) {
	ids := append([]string{}, keyIDs...) // never NULL
	return queryAll(ctx, t, "list versions to re-wrap", qSealedVersionsNotUnderAny, scanSealedVersion,
		afterARN, afterVersionID, ids, limit)
}

func (t *txn) KeyUsage(ctx context.Context) (map[string]int, error) {
	type row struct {
		id string
		n  int
	}
	rows, err := queryAll(ctx, t, "count versions by key", qKeyUsage, func(sc scanner) (row, error) {
		var r row
		err := sc.Scan(&r.id, &r.n)
		return r, err
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]int, len(rows))
	for _, r := range rows {
		m[r.id] = r.n
	}
	return m, nil
}

func (t *txn) Meta(ctx context.Context, key string) (string, error) {
	return queryOne(ctx, t, "read meta", qMeta, scanBytesString, key)
}

func (t *txn) PutMeta(ctx context.Context, key, value string) error {
	_, err := t.exec(ctx, "put meta", false, qPutMeta, key, []byte(value))
	return err
}

// The row mappings both SQL backends share.
var (
	scanSecret = rows.ScanSecret
	secretArgs = rows.SecretArgs
	scanUser   = rows.ScanUser
	scanPolicy = rows.ScanPolicy
	scanOutbox = rows.ScanOutbox
	toMS       = rows.ToMS
	fromMS     = rows.FromMS
)
