-- Migration 2: principals, managed policies and the webhook outbox.

CREATE INDEX access_keys_by_principal ON access_keys (principal_arn, id);

CREATE TABLE users (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	arn        TEXT COLLATE "C" NOT NULL UNIQUE,
	user_id    TEXT COLLATE "C" NOT NULL UNIQUE,
	created_ms BIGINT NOT NULL
);

CREATE TABLE policies (
	name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	arn         TEXT COLLATE "C" NOT NULL UNIQUE,
	policy_id   TEXT COLLATE "C" NOT NULL UNIQUE,
	description TEXT   NOT NULL,
	document    TEXT   NOT NULL,
	created_ms  BIGINT NOT NULL,
	updated_ms  BIGINT NOT NULL
);

-- Deleting a user or a policy deletes its attachments.
CREATE TABLE user_policies (
	user_name   TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	policy_name TEXT COLLATE "C" NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
	PRIMARY KEY (user_name, policy_name)
);

CREATE INDEX user_policies_by_policy ON user_policies (policy_name, user_name);

CREATE TABLE outbox (
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target     TEXT    NOT NULL,
	event_id   TEXT    NOT NULL,
	body       TEXT    NOT NULL,
	created_ms BIGINT  NOT NULL,
	attempts   INTEGER NOT NULL,
	next_ms    BIGINT  NOT NULL,
	parked     BOOLEAN NOT NULL,
	last_error TEXT    NOT NULL
);

CREATE INDEX outbox_due ON outbox (next_ms, seq) WHERE NOT parked;
CREATE INDEX outbox_parked ON outbox (parked, seq);
