package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/rotor-secrets/rotor/internal/store"
)

// Master key versions and the scans that re-wrap envelopes (internal/keys).

const (
	qAllAccessKeys = `SELECT id, sealed_secret, principal_arn, active, created_ms FROM access_keys
		WHERE id > ? ORDER BY id LIMIT ?`

	qMasterKeys   = `SELECT id, wrapped, state, created_ms, retired_ms, family FROM master_keys ORDER BY created_ms, id`
	qPutMasterKey = `INSERT INTO master_keys (id, wrapped, state, created_ms, retired_ms, family) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET wrapped = excluded.wrapped, state = excluded.state,
			created_ms = excluded.created_ms, retired_ms = excluded.retired_ms, family = excluded.family`

	qKMSKeys   = `SELECT id, alias, description, enabled, created_ms FROM kms_keys ORDER BY created_ms, id`
	qPutKMSKey = `INSERT INTO kms_keys (id, alias, description, enabled, created_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET alias = excluded.alias, description = excluded.description,
			enabled = excluded.enabled, created_ms = excluded.created_ms`
	qSealedVersionsNotUnderAny = `SELECT secret_arn, version_id, created_ms, last_accessed_ms, sealed, key_id, binary
		FROM versions WHERE (secret_arn, version_id) > (?, ?) AND sealed IS NOT NULL
			AND key_id NOT IN (SELECT value FROM json_each(?))
		ORDER BY secret_arn, version_id LIMIT ?`

	// Walks the UNIQUE (secret_arn, version_id) index from the cursor, so a
	// whole pass costs one visit per version however it is cut into pages.
	qSealedVersionsNotUnder = `SELECT secret_arn, version_id, created_ms, last_accessed_ms, sealed, key_id, binary
		FROM versions WHERE (secret_arn, version_id) > (?, ?) AND sealed IS NOT NULL AND key_id <> ?
		ORDER BY secret_arn, version_id LIMIT ?`
	qKeyUsage = `SELECT key_id, count(*) FROM versions WHERE sealed IS NOT NULL GROUP BY key_id`
)

// AllAccessKeys returns a page of every principal's access keys by id.
func (t *txn) AllAccessKeys(ctx context.Context, after string, limit int) ([]store.AccessKey, error) {
	return queryAll(ctx, t, "list all access keys", qAllAccessKeys, func(sc scanner) (store.AccessKey, error) {
		var k store.AccessKey
		var created int64
		err := sc.Scan(&k.ID, nullableBlob{&k.SealedSecret}, &k.PrincipalARN, &k.Active, &created)
		k.CreatedAt = fromMS(created)
		return k, err
	}, after, limit)
}

// MasterKeys returns every master key version, oldest first.
func (t *txn) MasterKeys(ctx context.Context) ([]store.MasterKeyVersion, error) {
	return queryAll(ctx, t, "list master keys", qMasterKeys, func(sc scanner) (store.MasterKeyVersion, error) {
		var k store.MasterKeyVersion
		var created, retired int64
		err := sc.Scan(&k.ID, nullableBlob{&k.Wrapped}, &k.State, &created, &retired, &k.Family)
		k.CreatedAt, k.RetiredAt = fromMS(created), fromMS(retired)
		return k, err
	})
}

// PutMasterKey inserts or replaces k.
func (t *txn) PutMasterKey(ctx context.Context, k store.MasterKeyVersion) error {
	return t.execWrite(ctx, "put master key", qPutMasterKey,
		k.ID, k.Wrapped, string(k.State), toMS(k.CreatedAt), toMS(k.RetiredAt), k.Family)
}

// KMSKeys returns every named KMS key, oldest first.
func (t *txn) KMSKeys(ctx context.Context) ([]store.KMSKey, error) {
	return queryAll(ctx, t, "list kms keys", qKMSKeys, func(sc scanner) (store.KMSKey, error) {
		var k store.KMSKey
		var alias sql.NullString
		var created int64
		err := sc.Scan(&k.ID, &alias, &k.Description, &k.Enabled, &created)
		k.Alias, k.CreatedAt = alias.String, fromMS(created)
		return k, err
	})
}

// PutKMSKey inserts or replaces k; ErrConflict if its alias is another
// key's.
func (t *txn) PutKMSKey(ctx context.Context, k store.KMSKey) error {
	alias := sql.NullString{String: k.Alias, Valid: k.Alias != ""}
	return t.execWrite(ctx, "put kms key", qPutKMSKey, k.ID, alias, k.Description, k.Enabled, toMS(k.CreatedAt))
}

// SealedVersionsNotUnderAny returns a page of the versions with a value
// wrapped under none of keyIDs, in (secret ARN, version id) order.
func (t *txn) SealedVersionsNotUnderAny(ctx context.Context, keyIDs []string, afterARN, afterVersionID string, limit int) ([]store.Version, error) {
	ids, err := json.Marshal(append([]string{}, keyIDs...))
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, t, "list versions to re-wrap", qSealedVersionsNotUnderAny, scanSealedVersion,
		afterARN, afterVersionID, string(ids), limit)
}

func scanSealedVersion(sc scanner) (store.Version, error) {
	var v store.Version
	var created, accessed int64
	err := sc.Scan(&v.SecretARN, &v.VersionID, &created, &accessed, nullableBlob{&v.Sealed}, &v.KeyID, &v.Binary)
	v.CreatedAt, v.LastAccessedAt = fromMS(created), fromMS(accessed)
	return v, err
}

// SealedVersionsNotUnder returns a page of the versions with a value not
// wrapped under keyID, in (secret ARN, version id) order.
func (t *txn) SealedVersionsNotUnder(ctx context.Context, keyID, afterARN, afterVersionID string, limit int) ([]store.Version, error) {
	return queryAll(ctx, t, "list versions to re-wrap", qSealedVersionsNotUnder, func(sc scanner) (store.Version, error) {
		var v store.Version
		var created, accessed int64
		err := sc.Scan(&v.SecretARN, &v.VersionID, &created, &accessed, nullableBlob{&v.Sealed}, &v.KeyID, &v.Binary)
		v.CreatedAt, v.LastAccessedAt = fromMS(created), fromMS(accessed)
		return v, err
	}, afterARN, afterVersionID, keyID, limit)
}

// KeyUsage counts the versions with a value by key id.
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
