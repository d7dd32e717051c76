-- Migration 2: principals, managed policies and the webhook outbox.

CREATE INDEX access_keys_by_principal ON access_keys (principal_arn, id);

CREATE TABLE users (
	name       TEXT    NOT NULL PRIMARY KEY,
	arn        TEXT    NOT NULL UNIQUE,
	user_id    TEXT    NOT NULL UNIQUE,
	created_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE policies (
	name        TEXT    NOT NULL PRIMARY KEY,
	arn         TEXT    NOT NULL UNIQUE,
	policy_id   TEXT    NOT NULL UNIQUE,
	description TEXT    NOT NULL,
	document    TEXT    NOT NULL,
	created_ms  INTEGER NOT NULL,
	updated_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Deleting a user or a policy deletes its attachments.
CREATE TABLE user_policies (
	user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	policy_name TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
	PRIMARY KEY (user_name, policy_name)
) STRICT, WITHOUT ROWID;

CREATE INDEX user_policies_by_policy ON user_policies (policy_name, user_name);

CREATE TABLE outbox (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	target     TEXT    NOT NULL,
	event_id   TEXT    NOT NULL,
	body       TEXT    NOT NULL,
	created_ms INTEGER NOT NULL,
	attempts   INTEGER NOT NULL,
	next_ms    INTEGER NOT NULL,
	parked     INTEGER NOT NULL CHECK (parked IN (0, 1)),
	last_error TEXT    NOT NULL
) STRICT;

CREATE INDEX outbox_due ON outbox (next_ms, seq) WHERE parked = 0;
CREATE INDEX outbox_parked ON outbox (parked, seq);
