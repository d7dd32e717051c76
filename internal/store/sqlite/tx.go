package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/rows"
)

var _ store.Tx = (*txn)(nil)

// txn is a store.Tx on one connection; every query is a statement prepared
// once per connection.
type txn struct {
	c     *conn
	write bool
	done  bool
}

const secretColumns = `arn, name, description, kms_key_id, tags, resource_policy,
	created_ms, last_changed_ms, last_accessed_ms, deleted_ms, deletion_ms,
	rotation_configured, rotation_enabled, rotation_lambda_arn, rotation_rules_json,
	last_rotated_ms, next_rotation_ms, rotation_state_json, rotation_wake_ms`

// stagesColumn is a version's labels in byte order, hex-encoded (so no
// label can contain the separator) and joined by commas; ” when none.
const stagesColumn = `coalesce((SELECT group_concat(hex(l.stage), ',' ORDER BY l.stage)
	FROM labels l WHERE l.secret_arn = v.secret_arn AND l.version_id = v.version_id), '')`

const (
	qSecret       = `SELECT ` + secretColumns + ` FROM secrets WHERE arn = ?`
	qSecretByName = `SELECT ` + secretColumns + ` FROM secrets WHERE name = ?`
	qCreateSecret = `INSERT INTO secrets (` + secretColumns + `)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)`
	qUpdateSecret = `UPDATE secrets SET name = ?2, description = ?3, kms_key_id = ?4, tags = ?5,
		resource_policy = ?6, created_ms = ?7, last_changed_ms = ?8, last_accessed_ms = ?9,
		deleted_ms = ?10, deletion_ms = ?11, rotation_configured = ?12, rotation_enabled = ?13,
		rotation_lambda_arn = ?14, rotation_rules_json = ?15, last_rotated_ms = ?16,
		next_rotation_ms = ?17, rotation_state_json = ?18, rotation_wake_ms = ?19
		WHERE arn = ?1`
	qDeleteSecret  = `DELETE FROM secrets WHERE arn = ?`
	qDeletedBefore = `SELECT arn FROM secrets WHERE deletion_ms <> 0 AND deletion_ms <= ?
		ORDER BY deletion_ms, arn LIMIT ?`
	qRotationsDue = `SELECT arn FROM secrets WHERE rotation_wake_ms <> 0 AND rotation_wake_ms <= ?
		ORDER BY rotation_wake_ms, arn LIMIT ?`

	qVersions = `SELECT v.version_id, v.created_ms, v.last_accessed_ms, v.key_id, v.binary, ` + stagesColumn + `
		FROM versions v WHERE v.secret_arn = ? ORDER BY v.created_ms, v.seq`
	qVersion = `SELECT v.version_id, v.created_ms, v.last_accessed_ms, v.sealed, v.key_id, v.binary, ` + stagesColumn + `
		FROM versions v WHERE v.secret_arn = ? AND v.version_id = ?`
	// The hot path of GetSecretValue: two primary-key lookups and a
	// covering index scan for the labels.
	qVersionByStage = `SELECT v.version_id, v.created_ms, v.last_accessed_ms, v.sealed, v.key_id, v.binary, ` + stagesColumn + `
		FROM labels s JOIN versions v ON v.secret_arn = s.secret_arn AND v.version_id = s.version_id
		WHERE s.secret_arn = ? AND s.stage = ?`
	qCreateVersion = `INSERT INTO versions (secret_arn, version_id, created_ms, last_accessed_ms, sealed, key_id, binary)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	qUpdateVersion = `UPDATE versions SET sealed = ?, key_id = ?, binary = ?, last_accessed_ms = ?
		WHERE secret_arn = ? AND version_id = ?`
	qDeleteVersion = `DELETE FROM versions WHERE secret_arn = ? AND version_id = ?`
	qSetStage      = `INSERT INTO labels (secret_arn, stage, version_id) VALUES (?, ?, ?)
		ON CONFLICT (secret_arn, stage) DO UPDATE SET version_id = excluded.version_id`
	qRemoveStage = `DELETE FROM labels WHERE secret_arn = ? AND stage = ?`

	qAccessKey    = `SELECT sealed_secret, principal_arn, active, created_ms FROM access_keys WHERE id = ?`
	qPutAccessKey = `INSERT INTO access_keys (id, sealed_secret, principal_arn, active, created_ms)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
		principal_arn = excluded.principal_arn, active = excluded.active, created_ms = excluded.created_ms`

	qMeta    = `SELECT value FROM meta WHERE key = ?`
	qPutMeta = `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`
)

// check admits a call: tx must still be running, and write methods need a
// read-write transaction.
func (t *txn) check(write bool) error {
	if t.done {
		return errTxDone
	}
	if write && !t.write {
		return errReadOnly
	}
	return nil
}

// prepare returns q prepared on the transaction's connection, once ctx has
// been checked, and the context to run it under.
//
// Statements are checked against ctx before they start but not interrupted
// once running: every one is a short indexed lookup or a page of at most
// Limit rows, and handing the driver a cancellable context costs two
// goroutines per statement (one in database/sql, one in modernc.org/sqlite),
// which would double the cost of GetSecretValue. The only statement that
// can wait long, BEGIN IMMEDIATE behind another process's lock, keeps ctx.
func (t *txn) prepare(ctx context.Context, q string) (*sql.Stmt, context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if t.c.aborted != nil {
		return nil, nil, fmt.Errorf("transaction aborted by an earlier error: %v", t.c.aborted)
	}
	ctx = context.WithoutCancel(ctx)
	st, err := t.c.stmt(ctx, q)
	return st, ctx, err
}

// queryRow runs the prepared q, expecting at most one row.
func (t *txn) queryRow(ctx context.Context, q string, args ...any) (*sql.Row, error) {
	st, ctx, err := t.prepare(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// query runs the prepared q.
func (t *txn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, ctx, err := t.prepare(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// exec runs the prepared q and returns the number of rows it changed.
func (t *txn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	st, ctx, err := t.prepare(ctx, q)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Secret returns the secret with this ARN.
func (t *txn) Secret(ctx context.Context, arn string) (store.Secret, error) {
	return t.secret(ctx, "read secret", qSecret, arn)
}

// SecretByName returns the secret with this name.
func (t *txn) SecretByName(ctx context.Context, name string) (store.Secret, error) {
	return t.secret(ctx, "read secret by name", qSecretByName, name)
}

func (t *txn) secret(ctx context.Context, op, q, key string) (store.Secret, error) {
	if err := t.check(false); err != nil {
		return store.Secret{}, err
	}
	row, err := t.queryRow(ctx, q, key)
	if err != nil {
		return store.Secret{}, fail(ctx, t.c, op, err)
	}
	s, err := scanSecret(row)
	if err != nil {
		return store.Secret{}, fail(ctx, t.c, op, err)
	}
	return s, nil
}

// listKey selects one of the ListSecrets queries.
type listKey struct {
	sortBy  store.SortBy
	desc    bool
	after   bool
	deleted bool // include secrets scheduled for deletion
}

// listQueries holds every ListSecrets query, built once.
var listQueries = func() map[listKey]string {
	columns := map[store.SortBy]string{
		store.SortByCreated:      "created_ms",
		store.SortByName:         "name",
		store.SortByLastChanged:  "last_changed_ms",
		store.SortByLastAccessed: "last_accessed_ms",
	}
	qs := make(map[listKey]string)
	for sortBy, col := range columns {
		for _, desc := range []bool{false, true} {
			for _, after := range []bool{false, true} {
				for _, deleted := range []bool{false, true} {
					qs[listKey{sortBy, desc, after, deleted}] = listQuery(col, desc, after, deleted)
				}
			}
		}
	}
	return qs
}()

// listQuery is a keyset-paginated walk of an index on (col, arn). The
// predicates are spelled as the partial indexes in schema.sql expect.
func listQuery(col string, desc, after, deleted bool) string {
	var where []string
	if !deleted {
		where = append(where, "deleted_ms = 0")
	}
	cmp, dir := ">", "ASC"
	if desc {
		cmp, dir = "<", "DESC"
	}
	if after {
		where = append(where, fmt.Sprintf("(%s, arn) %s (?, ?)", col, cmp))
	}
	q := "SELECT " + secretColumns + " FROM secrets"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q + fmt.Sprintf(" ORDER BY %s %s, arn %s LIMIT ?", col, dir, dir)
}

// ListSecrets returns a page of secrets in q's order.
func (t *txn) ListSecrets(ctx context.Context, q store.ListQuery) ([]store.Secret, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, fmt.Errorf("sqlite: list secrets: limit %d is not positive", q.Limit)
	}
	query, ok := listQueries[listKey{q.SortBy, q.Descending, q.After != nil, q.IncludeDeleted}]
	if !ok {
		return nil, fmt.Errorf("sqlite: list secrets: unknown order %q", q.SortBy)
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
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, fail(ctx, t.c, "list secrets", err)
	}
	defer rows.Close()
	out := make([]store.Secret, 0, min(q.Limit, 100))
	for rows.Next() {
		s, err := scanSecret(rows)
		if err != nil {
			return nil, fail(ctx, t.c, "list secrets", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, t.c, "list secrets", err)
	}
	return out, nil
}

// CreateSecret inserts s; ErrConflict if its name or ARN is taken.
func (t *txn) CreateSecret(ctx context.Context, s store.Secret) error {
	if err := t.check(true); err != nil {
		return err
	}
	args, err := secretArgs(s)
	if err != nil {
		return err
	}
	if _, err := t.exec(ctx, qCreateSecret, args...); err != nil {
		return fail(ctx, t.c, "create secret", err)
	}
	return nil
}

// UpdateSecret rewrites the secret with s.ARN; ErrNotFound if there is
// none, ErrConflict if s.Name belongs to another secret.
func (t *txn) UpdateSecret(ctx context.Context, s store.Secret) error {
	if err := t.check(true); err != nil {
		return err
	}
	args, err := secretArgs(s)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qUpdateSecret, args...)
	if err != nil {
		return fail(ctx, t.c, "update secret", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// DeleteSecret removes the secret; its versions and labels go by cascade.
// ErrNotFound if there is none.
func (t *txn) DeleteSecret(ctx context.Context, arn string) error {
	if err := t.check(true); err != nil {
		return err
	}
	n, err := t.exec(ctx, qDeleteSecret, arn)
	if err != nil {
		return fail(ctx, t.c, "delete secret", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// DeletedBefore returns up to limit ARNs of secrets due for final deletion
// at before, earliest first.
func (t *txn) DeletedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return t.arnsDue(ctx, qDeletedBefore, "deleted before", before, limit)
}

// RotationsDue returns up to limit ARNs of secrets whose rotation wake-up
// time is set and not after before, earliest first.
func (t *txn) RotationsDue(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return t.arnsDue(ctx, qRotationsDue, "rotations due", before, limit)
}

// arnsDue runs one of the queue queries: ARNs whose time column is set and
// not after before.
func (t *txn) arnsDue(ctx context.Context, query, what string, before time.Time, limit int) ([]string, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("sqlite: %s: limit %d is not positive", what, limit)
	}
	rows, err := t.query(ctx, query, toMS(before), limit)
	if err != nil {
		return nil, fail(ctx, t.c, what, err)
	}
	defer rows.Close()
	var arns []string
	for rows.Next() {
		var arn string
		if err := rows.Scan(&arn); err != nil {
			return nil, fail(ctx, t.c, what, err)
		}
		arns = append(arns, arn)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, t.c, what, err)
	}
	return arns, nil
}

// Versions returns the secret's versions without their values, oldest first
// (ties in insertion order).
func (t *txn) Versions(ctx context.Context, arn string) ([]store.Version, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	rows, err := t.query(ctx, qVersions, arn)
	if err != nil {
		return nil, fail(ctx, t.c, "list versions", err)
	}
	defer rows.Close()
	var out []store.Version
	for rows.Next() {
		v := store.Version{SecretARN: arn}
		var created, accessed int64
		var stages string
		if err := rows.Scan(&v.VersionID, &created, &accessed, &v.KeyID, &v.Binary, &stages); err != nil {
			return nil, fail(ctx, t.c, "list versions", err)
		}
		v.CreatedAt, v.LastAccessedAt = fromMS(created), fromMS(accessed)
		if v.Stages, err = decodeStages(stages); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, t.c, "list versions", err)
	}
	return out, nil
}

// Version returns one version with its value and labels.
func (t *txn) Version(ctx context.Context, arn, versionID string) (store.Version, error) {
	return t.version(ctx, "read version", qVersion, arn, versionID)
}

// VersionByStage returns the version carrying stage.
func (t *txn) VersionByStage(ctx context.Context, arn, stage string) (store.Version, error) {
	return t.version(ctx, "read version by stage", qVersionByStage, arn, stage)
}

func (t *txn) version(ctx context.Context, op, q, arn, key string) (store.Version, error) {
	if err := t.check(false); err != nil {
		return store.Version{}, err
	}
	row, err := t.queryRow(ctx, q, arn, key)
	if err != nil {
		return store.Version{}, fail(ctx, t.c, op, err)
	}
	v := store.Version{SecretARN: arn}
	var created, accessed int64
	var stages string
	if err := row.Scan(&v.VersionID, &created, &accessed, nullableBlob{&v.Sealed}, &v.KeyID, &v.Binary, &stages); err != nil {
		return store.Version{}, fail(ctx, t.c, op, err)
	}
	v.CreatedAt, v.LastAccessedAt = fromMS(created), fromMS(accessed)
	if v.Stages, err = decodeStages(stages); err != nil {
		return store.Version{}, err
	}
	return v, nil
}

// CreateVersion inserts v (without labels); ErrConflict if the secret has a
// version with its id, ErrNotFound if the secret does not exist.
func (t *txn) CreateVersion(ctx context.Context, v store.Version) error {
	if err := t.check(true); err != nil {
		return err
	}
	_, err := t.exec(ctx, qCreateVersion, v.SecretARN, v.VersionID, toMS(v.CreatedAt),
		toMS(v.LastAccessedAt), v.Sealed, v.KeyID, v.Binary)
	if err != nil {
		return fail(ctx, t.c, "create version", err)
	}
	return nil
}

// UpdateVersion rewrites the version's value, key id, binary flag and access
// time; ErrNotFound if it does not exist.
func (t *txn) UpdateVersion(ctx context.Context, v store.Version) error {
	if err := t.check(true); err != nil {
		return err
	}
	n, err := t.exec(ctx, qUpdateVersion, v.Sealed, v.KeyID, v.Binary, toMS(v.LastAccessedAt),
		v.SecretARN, v.VersionID)
	if err != nil {
		return fail(ctx, t.c, "update version", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// DeleteVersion removes the version and its labels; ErrNotFound if it does
// not exist.
func (t *txn) DeleteVersion(ctx context.Context, arn, versionID string) error {
	if err := t.check(true); err != nil {
		return err
	}
	n, err := t.exec(ctx, qDeleteVersion, arn, versionID)
	if err != nil {
		return fail(ctx, t.c, "delete version", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SetStage puts the label on versionID, taking it off whichever version of
// the secret had it; ErrNotFound if the version does not exist.
func (t *txn) SetStage(ctx context.Context, arn, stage, versionID string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if _, err := t.exec(ctx, qSetStage, arn, stage, versionID); err != nil {
		return fail(ctx, t.c, "set stage", err)
	}
	return nil
}

// RemoveStage takes the label off the secret's versions, if any has it.
func (t *txn) RemoveStage(ctx context.Context, arn, stage string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if _, err := t.exec(ctx, qRemoveStage, arn, stage); err != nil {
		return fail(ctx, t.c, "remove stage", err)
	}
	return nil
}

// AccessKey returns the access key with this id.
func (t *txn) AccessKey(ctx context.Context, id string) (store.AccessKey, error) {
	if err := t.check(false); err != nil {
		return store.AccessKey{}, err
	}
	row, err := t.queryRow(ctx, qAccessKey, id)
	if err != nil {
		return store.AccessKey{}, fail(ctx, t.c, "read access key", err)
	}
	k := store.AccessKey{ID: id}
	var created int64
	if err := row.Scan(nullableBlob{&k.SealedSecret}, &k.PrincipalARN, &k.Active, &created); err != nil {
		return store.AccessKey{}, fail(ctx, t.c, "read access key", err)
	}
	k.CreatedAt = fromMS(created)
	return k, nil
}

// PutAccessKey inserts or replaces k.
func (t *txn) PutAccessKey(ctx context.Context, k store.AccessKey) error {
	if err := t.check(true); err != nil {
		return err
	}
	_, err := t.exec(ctx, qPutAccessKey, k.ID, k.SealedSecret, k.PrincipalARN, k.Active, toMS(k.CreatedAt))
	if err != nil {
		return fail(ctx, t.c, "put access key", err)
	}
	return nil
}

// Meta returns the metadata value under key.
func (t *txn) Meta(ctx context.Context, key string) (string, error) {
	if err := t.check(false); err != nil {
		return "", err
	}
	row, err := t.queryRow(ctx, qMeta, key)
	if err != nil {
		return "", fail(ctx, t.c, "read meta", err)
	}
	var v string
	if err := row.Scan(&v); err != nil {
		return "", fail(ctx, t.c, "read meta", err)
	}
	return v, nil
}

// PutMeta inserts or replaces the metadata value under key.
func (t *txn) PutMeta(ctx context.Context, key, value string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if _, err := t.exec(ctx, qPutMeta, key, value); err != nil {
		return fail(ctx, t.c, "put meta", err)
	}
	return nil
}

// nullableBlob scans a BLOB column keeping NULL (nil) apart from an empty
// value (non-nil, length 0), which the driver hands over alike as nil.
type nullableBlob struct{ p *[]byte }

func (n nullableBlob) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n.p = nil
	case []byte:
		// The driver owns v; copy. append to a non-nil empty slice keeps
		// an empty value non-nil.
		*n.p = append(make([]byte, 0, len(v)), v...)
	default:
		return fmt.Errorf("blob column holds %T", src)
	}
	return nil
}

// decodeStages undoes stagesColumn and sorts the labels.
func decodeStages(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	out := make([]string, 0, strings.Count(s, ",")+1)
	for part := range strings.SplitSeq(s, ",") {
		stage, ok := unhex(part)
		if !ok {
			return nil, fmt.Errorf("sqlite: corrupt stage list %q", s)
		}
		out = append(out, stage)
	}
	slices.Sort(out)
	return out, nil
}

// unhex decodes upper-case hex, as SQLite's hex() writes it, in one
// allocation.
func unhex(h string) (string, bool) {
	if len(h)%2 != 0 {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(h) / 2)
	for i := 0; i < len(h); i += 2 {
		hi, ok1 := nibble(h[i])
		lo, ok2 := nibble(h[i+1])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
	}
	return b.String(), true
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
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
