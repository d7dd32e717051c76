-- Migration 4: named KMS keys (internal/keys). The family of the default
-- key, alias/aws/secretsmanager, is ''.

CREATE TABLE kms_keys (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	alias       TEXT COLLATE "C" UNIQUE, -- NULL when the key has none
	description TEXT    NOT NULL,
	enabled     BOOLEAN NOT NULL,
	created_ms  BIGINT  NOT NULL
);

ALTER TABLE master_keys ADD COLUMN family TEXT COLLATE "C" NOT NULL DEFAULT '';

DROP INDEX master_keys_current;
CREATE UNIQUE INDEX master_keys_current ON master_keys (family, state) WHERE state = 'current';
