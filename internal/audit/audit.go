// Package audit is Rotor's audit log: an append-only file of JSON records,
// each bound to the one before it by a SHA-256 hash chain, with checkpoints
// signed by an Ed25519 key at regular intervals. Anyone holding the file and
// the public key can check that no record was edited, inserted, removed or
// reordered; with the latest checkpoint kept somewhere else (the anchor), they
// can also check that the end of the file was not cut off.
//
// # Writing
//
// Open a Log, Append a Record for every request and rotation event, Close it
// at shutdown. Append is fail-closed: it returns only once the record has
// been written and fsynced, and a caller that gets an error must refuse the
// operation it was auditing. Append assigns Seq, PrevHash and Hash (and Time
// when zero), and bounds every string field to MaxFieldLen bytes of valid
// UTF-8. The package cannot tell a secret value from any other string:
// callers must never put one in a record; Redact helps with error text that
// may echo one (a driver quoting a failed ALTER USER statement, say).
//
// Concurrent Appends are committed in groups: one writer goroutine takes
// every record queued while the previous group was being fsynced, writes them
// with one write and one fsync, and then wakes each caller. If that write or
// fsync fails, every caller of the group gets an error wrapping ErrBroken,
// and so does every later Append: the file may end in a half-written group,
// and the chain is not continued on top of it. Open the file again (which
// moves a torn final line aside, see below) to resume.
//
// A caller whose ctx ends while it waits gets ctx.Err(); if its record was
// already handed to the writer it may still be written. Treat such a request
// as failed: the log may then hold a record of an operation that was not
// carried out, never the other way round.
//
// # Checkpoints
//
// After every CheckpointEvery records, after CheckpointInterval when records
// were added since the last checkpoint, on Checkpoint and on Close, the Log
// appends a record of type "checkpoint" whose Checkpoint signs the seq and
// hash of the record before it. Once that checkpoint is durable the Log
// passes it to Options.Anchor, which stores it outside the file. If Anchor
// fails, the Appends of that group return an error wrapping ErrAnchor (their
// records are in the file), and every later Append retries the anchor first
// and fails without writing while it keeps failing.
//
// # File format
//
// One record per line, each line the output of encoding/json's Marshal of a
// Record, so members appear in the order of the struct fields and "hash" is
// always the last one. Times are in UTC, RFC 3339 with up to nanoseconds.
//
// Hash is the lowercase hex SHA-256 of the line (without its newline) in
// which the value of that last "hash" member is the empty string, that is of
// json.Marshal of the record with Hash "". The bytes in the file are what is
// hashed, so an auditor needs no JSON encoder to check a line:
//
//	sed -n 5p audit.log | sed 's/"hash":"[0-9a-f]*"}$/"hash":""}/' | tr -d '\n' | sha256sum
//
// PrevHash is the Hash of the previous line; the first record (seq 1) has 64
// zeros. Seq counts records from 1 without gaps, checkpoints included.
//
// A checkpoint's Signature is the standard base64 of the Ed25519 signature
// of these bytes, each line ending in "\n":
//
//	rotor-audit-checkpoint/1
//	seq=<Checkpoint.Seq in decimal>
//	hash=<Checkpoint.Hash>
//	time=<Checkpoint.Time in UTC, RFC 3339 with nanoseconds, trailing zeros dropped>
//	key_id=<Checkpoint.KeyID>
//
// The time line is exactly the "time" string of the checkpoint in the file.
// KeyID is the hex of the first 8 bytes of the SHA-256 of the 32-byte public
// key. MarshalPublicKey writes the key as a PKIX "PUBLIC KEY" PEM block, which
// openssl reads (openssl pkeyutl -verify -pubin -inkey key.pem -rawin …).
//
// # Torn lines
//
// A crash in the middle of a write can leave a final line without its
// newline. Open moves those bytes (only ever part of a group that no Append
// reported as written) to a file named PATH.torn-* beside the log, truncates
// the log to its last newline, and logs a warning. A final line that does
// end in a newline but does not verify is not repaired: Open returns a
// *TailError and the operator decides.
//
// # Verification and what it covers
//
// Verify reads a file with nothing but the public key and reports the first
// Problem. Editing a record breaks its hash; recomputing the hashes after an
// edit breaks the signature of the next checkpoint, since the attacker has no
// key; removing or reordering records breaks the seq sequence. Verify cannot
// see records removed from the end of the file on its own: give it the
// anchor, the latest checkpoint stored elsewhere, and a file that ends before
// that checkpoint is reported as truncated. Records appended after the latest
// anchored checkpoint are protected by the chain alone until the next
// checkpoint is anchored: anyone who can write the file can cut them off or
// rewrite them unnoticed. CheckpointEvery and CheckpointInterval bound that
// window.
//
// A Log is safe for concurrent use. Verify and Search read any io.Reader; on
// a live log they may see a final line that is still being written.
package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one line of the log.
type Record struct {
	Seq          uint64      `json:"seq"`
	Time         time.Time   `json:"time"`
	Type         string      `json:"type"`       // TypeRequest, TypeRotation or TypeCheckpoint
	EventName    string      `json:"event_name"` // "GetSecretValue", "rotor.CreateUser", "RotationSucceeded"
	RequestID    string      `json:"request_id,omitempty"`
	PrincipalARN string      `json:"principal_arn,omitempty"`
	AccessKeyID  string      `json:"access_key_id,omitempty"`
	SourceIP     string      `json:"source_ip,omitempty"`
	UserAgent    string      `json:"user_agent,omitempty"`
	SecretARN    string      `json:"secret_arn,omitempty"`
	VersionID    string      `json:"version_id,omitempty"`
	VersionStage string      `json:"version_stage,omitempty"`
	Outcome      string      `json:"outcome"` // one of the Outcome constants
	ErrorCode    string      `json:"error_code,omitempty"`
	Message      string      `json:"message,omitempty"` // error text or rotation failure reason; never a secret value
	Checkpoint   *Checkpoint `json:"checkpoint,omitempty"`
	PrevHash     string      `json:"prev_hash"`
	Hash         string      `json:"hash"` // must stay the last field: see the package comment
}

// Checkpoint signs the position of a log: the seq and hash of the record
// before the checkpoint record that holds it.
type Checkpoint struct {
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"` // base64 Ed25519 over SignedBytes
}

// Record types.
const (
	TypeRequest    = "request"
	TypeRotation   = "rotation"
	TypeCheckpoint = "checkpoint" // written by the Log only
)

// Outcomes.
const (
	OutcomeSuccess    = "success"
	OutcomeDenied     = "denied"
	OutcomeAuthFailed = "auth_failed"
	OutcomeInvalid    = "invalid"
	OutcomeError      = "error"
)

// EventCheckpoint is the EventName of checkpoint records.
const EventCheckpoint = "Checkpoint"

// MaxFieldLen bounds each string field of an appended record, in bytes;
// Append cuts longer values (a client chooses its User-Agent, for one).
const MaxFieldLen = 2048

// maxLineLen bounds a line that Verify, Search and Open accept. Records that
// Append writes stay far below it.
const maxLineLen = 1 << 20

// zeroHash is the PrevHash of the first record.
var zeroHash = strings.Repeat("0", 64)

var (
	// ErrBroken is wrapped by every Append error once a write or fsync of
	// the log has failed. The Log stays broken until the file is opened
	// again.
	ErrBroken = errors.New("audit: log broken by a failed write")

	// ErrAnchor is wrapped by Append, Checkpoint and Close errors when
	// Options.Anchor failed.
	ErrAnchor = errors.New("audit: anchoring a checkpoint failed")

	// ErrClosed is returned by Append and Checkpoint after Close.
	ErrClosed = errors.New("audit: log closed")

	// ErrInvalidRecord is wrapped by Append when a record lacks a required
	// field or has an unknown type or outcome.
	ErrInvalidRecord = errors.New("audit: invalid record")
)

// hashSuffix is how every line ends: `,"hash":"` 64 hex digits `"}`.
const (
	hashKey       = `,"hash":"`
	hashSuffixLen = len(hashKey) + 64 + len(`"}`)
	emptyHashTail = `,"hash":""}`
)

// lineHash returns the hash a line declares and the hash of its content. ok
// is false when the line does not end the way every record line ends.
func lineHash(line []byte) (declared, computed string, ok bool) {
	if len(line) < hashSuffixLen+1 || line[0] != '{' {
		return "", "", false
	}
	tail := line[len(line)-hashSuffixLen:]
	if string(tail[:len(hashKey)]) != hashKey || string(tail[len(tail)-2:]) != `"}` {
		return "", "", false
	}
	declared = string(tail[len(hashKey) : len(hashKey)+64])
	if !isLowerHex(declared) {
		return "", "", false
	}
	h := sha256.New()
	h.Write(line[:len(line)-hashSuffixLen])
	h.Write([]byte(emptyHashTail))
	return declared, hex.EncodeToString(h.Sum(nil)), true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SignedBytes returns the byte string a checkpoint's Signature signs; the
// package comment describes it.
func (c Checkpoint) SignedBytes() []byte {
	b := make([]byte, 0, 160)
	b = append(b, "rotor-audit-checkpoint/1\nseq="...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, "\nhash="...)
	b = append(b, c.Hash...)
	b = append(b, "\ntime="...)
	b = c.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\nkey_id="...)
	b = append(b, c.KeyID...)
	return append(b, '\n')
}

// checkSignature reports why c is not a checkpoint signed by pub, or nil.
func checkSignature(c Checkpoint, pub ed25519.PublicKey) error {
	if want := KeyID(pub); c.KeyID != want {
		return fmt.Errorf("signed by key %q, not by key %s", c.KeyID, want)
	}
	sig, err := decodeSignature(c.Signature)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, c.SignedBytes(), sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

// KeyID returns the id that checkpoints signed by the key record: the hex of
// the first 8 bytes of the SHA-256 of the public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// spkiPrefix is the DER of an Ed25519 SubjectPublicKeyInfo up to the key
// (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING { key } }.
var spkiPrefix = []byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}

// MarshalPublicKey returns pub as a PEM "PUBLIC KEY" block (PKIX), the form
// openssl and ParsePublicKey read.
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der := append(slices.Clip(spkiPrefix), pub...)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKey reads an Ed25519 public key from a PEM "PUBLIC KEY" block.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("audit public key: no PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %v", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit public key: %T, want an Ed25519 key", k)
	}
	return pub, nil
}

// Redact returns msg with every occurrence of each non-empty value replaced
// by "[REDACTED]". Pass error text through it, with the values the failed
// step handled, before it becomes a record's Message.
func Redact(msg string, values ...string) string {
	vs := slices.DeleteFunc(slices.Clone(values), func(v string) bool { return v == "" })
	// Longest first, so that a value containing another is replaced whole.
	slices.SortFunc(vs, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vs {
		msg = strings.ReplaceAll(msg, v, "[REDACTED]")
	}
	return msg
}

// clean makes s valid UTF-8 of at most MaxFieldLen bytes, so that the record
// Append returns is the record the file holds.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxFieldLen {
		return s
	}
	n := MaxFieldLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
