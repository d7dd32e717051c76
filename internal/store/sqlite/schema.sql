-- Rotor's SQLite schema, migration 1. Applied by migrate in one transaction,
-- which then sets PRAGMA user_version = 1.
--
-- Times are INTEGER Unix milliseconds; 0 means unset (Go's zero time.Time).

CREATE TABLE secrets (
	arn                 TEXT    NOT NULL PRIMARY KEY,
	name                TEXT    NOT NULL UNIQUE,
	description         TEXT    NOT NULL,
	kms_key_id          TEXT    NOT NULL,
	tags                TEXT    NOT NULL, -- JSON [{"Key":…,"Value":…}] in insertion order
	resource_policy     TEXT    NOT NULL, -- JSON document, '' when none
	created_ms          INTEGER NOT NULL,
	last_changed_ms     INTEGER NOT NULL,
	last_accessed_ms    INTEGER NOT NULL,
	deleted_ms          INTEGER NOT NULL, -- non-zero: scheduled for deletion
	deletion_ms         INTEGER NOT NULL, -- when the scheduled deletion becomes final
	rotation_configured INTEGER NOT NULL CHECK (rotation_configured IN (0, 1)),
	rotation_enabled    INTEGER NOT NULL CHECK (rotation_enabled IN (0, 1)),
	rotation_lambda_arn TEXT    NOT NULL,
	rotation_rules_json TEXT    NOT NULL,
	last_rotated_ms     INTEGER NOT NULL,
	next_rotation_ms    INTEGER NOT NULL,
	rotation_state_json TEXT    NOT NULL,
	rotation_wake_ms    INTEGER NOT NULL  -- non-zero: when the rotation engine must look at this secret
) STRICT;

-- ListSecrets walks one of these per order, forwards or backwards, with the
-- ARN as tie-breaker, so a page costs O(limit) whatever its position. Each
-- order has a partial twin over the live secrets (deleted_ms = 0) for the
-- default listing, which leaves out secrets scheduled for deletion. The
-- name order of all secrets uses the UNIQUE (name) index: names never tie.
CREATE INDEX secrets_by_created ON secrets (created_ms, arn);
CREATE INDEX secrets_live_by_created ON secrets (created_ms, arn) WHERE deleted_ms = 0;
CREATE INDEX secrets_live_by_name ON secrets (name, arn) WHERE deleted_ms = 0;
CREATE INDEX secrets_by_last_changed ON secrets (last_changed_ms, arn);
CREATE INDEX secrets_live_by_last_changed ON secrets (last_changed_ms, arn) WHERE deleted_ms = 0;
CREATE INDEX secrets_by_last_accessed ON secrets (last_accessed_ms, arn);
CREATE INDEX secrets_live_by_last_accessed ON secrets (last_accessed_ms, arn) WHERE deleted_ms = 0;

-- DeletedBefore: the purge job's queue.
CREATE INDEX secrets_by_deletion ON secrets (deletion_ms, arn) WHERE deletion_ms <> 0;

-- RotationsDue: the rotation engine's queue.
CREATE INDEX secrets_by_rotation_wake ON secrets (rotation_wake_ms, arn) WHERE rotation_wake_ms <> 0;

-- seq records insertion order (Versions lists by created_ms, then seq).
-- AUTOINCREMENT requires seq to be the INTEGER PRIMARY KEY, so the natural
-- key (secret_arn, version_id) is a UNIQUE constraint: the same index a
-- composite primary key would build on a rowid table.
CREATE TABLE versions (
	seq              INTEGER PRIMARY KEY AUTOINCREMENT,
	secret_arn       TEXT    NOT NULL REFERENCES secrets (arn) ON DELETE CASCADE,
	version_id       TEXT    NOT NULL,
	created_ms       INTEGER NOT NULL,
	last_accessed_ms INTEGER NOT NULL,
	sealed           BLOB,             -- NULL for a placeholder version
	key_id           TEXT    NOT NULL,
	binary           INTEGER NOT NULL CHECK (binary IN (0, 1)),
	UNIQUE (secret_arn, version_id)
) STRICT;

CREATE INDEX versions_by_created ON versions (secret_arn, created_ms, seq);

-- A label is on at most one version of a secret: the primary key. Deleting
-- a version (or, through versions, a secret) deletes its labels.
CREATE TABLE labels (
	secret_arn TEXT NOT NULL,
	stage      TEXT NOT NULL,
	version_id TEXT NOT NULL,
	PRIMARY KEY (secret_arn, stage),
	FOREIGN KEY (secret_arn, version_id)
		REFERENCES versions (secret_arn, version_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- A version's labels in order, and the cascade from versions.
CREATE INDEX labels_by_version ON labels (secret_arn, version_id, stage);

CREATE TABLE access_keys (
	id            TEXT    NOT NULL PRIMARY KEY,
	sealed_secret BLOB,
	principal_arn TEXT    NOT NULL,
	active        INTEGER NOT NULL CHECK (active IN (0, 1)),
	created_ms    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE meta (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
