-- Migration 3: master key versions (internal/keys) and the index that
-- counts envelopes by the master key that wraps them.

CREATE TABLE master_keys (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	wrapped    BYTEA,
	state      TEXT   NOT NULL CHECK (state IN ('current', 'retired', 'destroyed')),
	created_ms BIGINT NOT NULL,
	retired_ms BIGINT NOT NULL
);

CREATE UNIQUE INDEX master_keys_current ON master_keys (state) WHERE state = 'current';

CREATE INDEX versions_by_key ON versions (key_id, secret_arn, version_id) WHERE sealed IS NOT NULL;
