-- Migration 4: named KMS keys (internal/keys). A key is a family of master
-- key versions; the family of the default key, alias/aws/secretsmanager,
-- is ''.

CREATE TABLE kms_keys (
	id          TEXT    NOT NULL PRIMARY KEY,
	alias       TEXT    UNIQUE, -- NULL when the key has none
	description TEXT    NOT NULL,
	enabled     INTEGER NOT NULL,
	created_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

ALTER TABLE master_keys ADD COLUMN family TEXT NOT NULL DEFAULT '';

-- At most one current version per family.
DROP INDEX master_keys_current;
CREATE UNIQUE INDEX master_keys_current ON master_keys (family, state) WHERE state = 'current';
