-- Rotor's PostgreSQL schema, migration 1: the tables of SQLite's schema.sql.
-- Times are BIGINT Unix milliseconds; 0 means unset (Go's zero time.Time).
-- Names, ARNs, labels and ids use COLLATE "C" so that they compare and sort
-- byte-wise, as the store contract requires.

CREATE TABLE secrets (
	arn                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	name                TEXT COLLATE "C" NOT NULL UNIQUE,
	description         TEXT    NOT NULL,
	kms_key_id          TEXT    NOT NULL,
	tags                TEXT    NOT NULL, -- JSON [{"Key":…,"Value":…}] in insertion order
	resource_policy     TEXT    NOT NULL, -- JSON document, '' when none
	created_ms          BIGINT  NOT NULL,
	last_changed_ms     BIGINT  NOT NULL,
	last_accessed_ms    BIGINT  NOT NULL,
	deleted_ms          BIGINT  NOT NULL, -- non-zero: scheduled for deletion
	deletion_ms         BIGINT  NOT NULL, -- when the scheduled deletion becomes final
	rotation_configured BOOLEAN NOT NULL,
	rotation_enabled    BOOLEAN NOT NULL,
	rotation_lambda_arn TEXT    NOT NULL,
	rotation_rules_json TEXT    NOT NULL,
	last_rotated_ms     BIGINT  NOT NULL,
	next_rotation_ms    BIGINT  NOT NULL,
	rotation_state_json TEXT    NOT NULL,
	rotation_wake_ms    BIGINT  NOT NULL  -- non-zero: when the rotation engine must look at this secret
);

CREATE INDEX secrets_by_created ON secrets (created_ms, arn);
CREATE INDEX secrets_live_by_created ON secrets (created_ms, arn) WHERE deleted_ms = 0;
CREATE INDEX secrets_live_by_name ON secrets (name, arn) WHERE deleted_ms = 0;
CREATE INDEX secrets_by_last_changed ON secrets (last_changed_ms, arn);
CREATE INDEX secrets_live_by_last_changed ON secrets (last_changed_ms, arn) WHERE deleted_ms = 0;
CREATE INDEX secrets_by_last_accessed ON secrets (last_accessed_ms, arn);
CREATE INDEX secrets_live_by_last_accessed ON secrets (last_accessed_ms, arn) WHERE deleted_ms = 0;
CREATE INDEX secrets_by_deletion ON secrets (deletion_ms, arn) WHERE deletion_ms <> 0;
CREATE INDEX secrets_by_rotation_wake ON secrets (rotation_wake_ms, arn) WHERE rotation_wake_ms <> 0;

-- seq records insertion order (Versions lists by created_ms, then seq).
CREATE TABLE versions (
	seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	secret_arn       TEXT COLLATE "C" NOT NULL REFERENCES secrets (arn) ON DELETE CASCADE,
	version_id       TEXT COLLATE "C" NOT NULL,
	created_ms       BIGINT  NOT NULL,
	last_accessed_ms BIGINT  NOT NULL,
	sealed           BYTEA,            -- NULL for a placeholder version
	key_id           TEXT COLLATE "C" NOT NULL,
	is_binary        BOOLEAN NOT NULL,
	UNIQUE (secret_arn, version_id)
);

CREATE INDEX versions_by_created ON versions (secret_arn, created_ms, seq);

CREATE TABLE labels (
	secret_arn TEXT COLLATE "C" NOT NULL,
	stage      TEXT COLLATE "C" NOT NULL,
	version_id TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (secret_arn, stage),
	FOREIGN KEY (secret_arn, version_id)
		REFERENCES versions (secret_arn, version_id) ON DELETE CASCADE
);

CREATE INDEX labels_by_version ON labels (secret_arn, version_id, stage);

CREATE TABLE access_keys (
	id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	sealed_secret BYTEA,
	principal_arn TEXT COLLATE "C" NOT NULL,
	active        BOOLEAN NOT NULL,
	created_ms    BIGINT  NOT NULL
);

CREATE TABLE meta (
	key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
);
