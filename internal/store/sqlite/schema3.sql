-- Migration 3: master key versions (internal/keys) and the index that
-- counts envelopes by the master key that wraps them.

-- wrapped is the version's material wrapped by the root key; NULL for the
-- root key itself (kept outside the store) and for destroyed versions.
CREATE TABLE master_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	wrapped    BLOB,
	state      TEXT    NOT NULL CHECK (state IN ('current', 'retired', 'destroyed')),
	created_ms INTEGER NOT NULL,
	retired_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- At most one current version.
CREATE UNIQUE INDEX master_keys_current ON master_keys (state) WHERE state = 'current';

-- KeyUsage: a covering index, so counting reads no table rows.
CREATE INDEX versions_by_key ON versions (key_id, secret_arn, version_id) WHERE sealed IS NOT NULL;
