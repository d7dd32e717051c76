-- Migration 5: the leases of internal/lease (the rotation leader; the
-- lease package creates the same table when it is used on its own); the
-- commit counter, whose row every Write locks and increments (the write
-- lock of every node, and store.Generations); and meta values as bytes:
-- sealed envelopes are kept there, and TEXT refuses what is not UTF-8.

CREATE TABLE rotor_generation (
	one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
	gen BIGINT NOT NULL
);
INSERT INTO rotor_generation (gen) VALUES (0);

-- How many committed transactions published each notice topic
-- (store.TopicVersions).
CREATE TABLE rotor_topics (
	topic TEXT COLLATE "C" PRIMARY KEY,
	gen   BIGINT NOT NULL
);

ALTER TABLE meta ALTER COLUMN value TYPE BYTEA USING convert_to(value, 'UTF8');

CREATE TABLE IF NOT EXISTS rotor_leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	token      BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL
);
