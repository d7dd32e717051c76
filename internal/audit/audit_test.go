package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// testKey returns a fixed key, so that signatures and golden files are
// stable.
func testKey(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is an injected clock that moves by step at every reading.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newClock(step time.Duration) *clock { return &clock{t: t0, step: step} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

// memFile is a File in memory that counts syncs and fails on demand.
type memFile struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	syncs   int
	failW   func(n int) error // called with the 1-based number of the write
	failS   func(n int) error
	gate    chan struct{} // when set, Sync waits for it to close
	entered chan struct{} // when set, Sync signals here before waiting
}

func (f *memFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.failW != nil {
		if err := f.failW(f.writes); err != nil {
			n := len(p) / 2 // a torn write
			f.buf.Write(p[:n])
			return n, err
		}
	}
	return f.buf.Write(p)
}

func (f *memFile) Sync() error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
	if f.failS != nil {
		return f.failS(f.syncs)
	}
	return nil
}

func (f *memFile) Close() error { return nil }

func (f *memFile) bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.buf.Bytes())
}

func (f *memFile) syncCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

// openLog opens a log with test defaults for the fields of opts left zero:
// key 1, a file in a temporary directory, a clock moving 1ms a reading. It
// closes the log when the test ends.
func openLog(t testing.TB, opts Options) *Log {
	t.Helper()
	if opts.Signer == nil {
		opts.Signer = testKey(1)
	}
	if opts.Path == "" && opts.File == nil {
		opts.Path = filepath.Join(t.TempDir(), "audit", "audit.log")
	}
	if opts.Now == nil {
		opts.Now = newClock(time.Millisecond).Now
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// req returns the i-th test record.
func req(i int) Record {
	return Record{
		Type:         TypeRequest,
		EventName:    []string{"GetSecretValue", "PutSecretValue", "rotor.CreateUser"}[i%3],
		RequestID:    fmt.Sprintf("req-%d", i),
		PrincipalARN: fmt.Sprintf("arn:aws:iam::000000000000:user/u%d", i%2),
		AccessKeyID:  fmt.Sprintf("AKIA%016d", i%2),
		SourceIP:     "127.0.0.1",
		UserAgent:    "aws-sdk-go-v2/1.0 <test> & more",
		SecretARN:    fmt.Sprintf("arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db%d-AbCdEf", i%2),
		Outcome:      OutcomeSuccess,
	}
}

func mustAppend(t testing.TB, l *Log, r Record) Record {
	t.Helper()
	got, err := l.Append(t.Context(), r)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return got
}

func splitLines(b []byte) [][]byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func verifyBytes(t *testing.T, b []byte, pub ed25519.PublicKey, anchor *Checkpoint) Report {
	t.Helper()
	rep, err := Verify(bytes.NewReader(b), pub, anchor)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestLineEncoding(t *testing.T) {
	rec := req(1)
	rec.Time = t0
	rec.Seq, rec.PrevHash = 1, zeroHash
	line, err := appendLine(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	// The line is json.Marshal of the record with its hash.
	want, _ := json.Marshal(rec)
	if got := line[:len(line)-1]; !bytes.Equal(got, want) {
		t.Fatalf("line\n%s\nwant json.Marshal\n%s", got, want)
	}
	// The hash is over json.Marshal of the record with Hash "".
	declared, computed, ok := lineHash(want)
	if !ok || declared != rec.Hash || computed != rec.Hash {
		t.Fatalf("lineHash = %s, %s, %v; want %s", declared, computed, ok, rec.Hash)
	}
	if !bytes.Contains(line, []byte(`"user_agent":"aws-sdk-go-v2/1.0 \u003ctest\u003e \u0026 more"`)) {
		t.Errorf("HTML escaping changed: %s", line)
	}
}

func TestSignedBytes(t *testing.T) {
	cp := Checkpoint{Seq: 42, Hash: strings.Repeat("ab", 32), Time: time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.FixedZone("x", 3600)),
		KeyID: "0123456789abcdef"}
	want := "rotor-audit-checkpoint/1\nseq=42\nhash=" + strings.Repeat("ab", 32) +
		"\ntime=2026-03-01T11:00:00.5Z\nkey_id=0123456789abcdef\n"
	if got := string(cp.SignedBytes()); got != want {
		t.Errorf("SignedBytes =\n%s\nwant\n%s", got, want)
	}
}

func TestKeyID(t *testing.T) {
	id := KeyID(pubOf(testKey(1)))
	if len(id) != 16 || !isLowerHex(id) {
		t.Errorf("KeyID = %q, want 16 hex digits", id)
	}
	if id == KeyID(pubOf(testKey(2))) {
		t.Error("two keys, one id")
	}
}

func TestPublicKeyPEM(t *testing.T) {
	pub := pubOf(testKey(1))
	b := MarshalPublicKey(pub)
	if !bytes.HasPrefix(b, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Fatalf("MarshalPublicKey = %s", b)
	}
	got, err := ParsePublicKey(b)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParsePublicKey = %x, %v; want %x", got, err, pub)
	}
	// The same DER as crypto/x509 writes.
	der, _ := x509.MarshalPKIXPublicKey(pub)
	if want := string(MarshalPublicKey(pub)); !strings.Contains(want, base64.StdEncoding.EncodeToString(der)) {
		t.Errorf("MarshalPublicKey differs from x509: %s", want)
	}
	for _, bad := range []string{"", "PUBLIC KEY", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := ParsePublicKey([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKey(%q) succeeded", bad)
		}
	}
}

func TestRedact(t *testing.T) {
	got := Redact(`near 'p@ss' at line 1: ALTER USER 'app' IDENTIFIED BY 'p@ssw0rd'`, "p@ssw0rd", "", "p@ss")
	want := `near '[REDACTED]' at line 1: ALTER USER 'app' IDENTIFIED BY '[REDACTED]'`
	if got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
}

func TestClean(t *testing.T) {
	long := strings.Repeat("é", MaxFieldLen) // 2 bytes each
	if got := clean(long); len(got) != MaxFieldLen || !strings.HasPrefix(long, got) {
		t.Errorf("clean(long) has %d bytes", len(got))
	}
	if got := clean("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("clean(invalid UTF-8) = %q", got)
	}
}

// TestGolden pins the file format: field order, escaping, the hash rule and
// the signature bytes. A change here breaks every verifier in the field.
func TestGolden(t *testing.T) {
	f := &memFile{}
	// A clock that stands still: checkpoints do not depend on how often the
	// Log reads it.
	l := openLog(t, Options{File: f, CheckpointEvery: 3, Now: func() time.Time { return t0.Add(time.Hour) }})
	for i := range 4 {
		r := req(i)
		r.Time = t0.Add(time.Duration(i) * time.Second)
		if i == 3 {
			r.Type, r.EventName, r.Outcome = TypeRotation, "RotationFailed", OutcomeError
			r.ErrorCode, r.Message, r.VersionID, r.VersionStage = "InternalFailure", "setSecret: connection refused", "v-1", "AWSPENDING"
		}
		mustAppend(t, l, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := f.bytes()
	path := filepath.Join("testdata", "log.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("log differs from %s (run go test -update if the change is meant)\ngot:\n%s", path, got)
	}
	if rep := verifyBytes(t, want, pubOf(testKey(1)), nil); rep.Problem != nil || rep.Records != 6 || rep.Checkpoints != 2 {
		t.Errorf("golden log: %+v", rep)
	}
}

// TestAuditorRecipes checks the commands the package comment gives an
// auditor without Go: sed and sha256sum for hashes, openssl for signatures.
func TestAuditorRecipes(t *testing.T) {
	golden, err := readGolden()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(logPath, golden, 0o600); err != nil {
		t.Fatal(err)
	}
	lines := splitLines(golden)

	t.Run("sha256sum", func(t *testing.T) {
		if _, err := exec.LookPath("sha256sum"); err != nil {
			t.Fatalf("sha256sum (coreutils) is not on PATH; scripts/test-deps.sh installs it: %v", err)
		}
		for i, line := range lines {
			script := fmt.Sprintf(`sed -n %dp "$1" | sed 's/"hash":"[0-9a-f]*"}$/"hash":""}/' | tr -d '\n' | sha256sum`, i+1)
			out, err := exec.Command("sh", "-c", script, "sh", logPath).Output()
			if err != nil {
				t.Fatal(err)
			}
			var rec Record
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatal(err)
			}
			if got := strings.Fields(string(out))[0]; got != rec.Hash {
				t.Errorf("line %d: sha256sum says %s, the record %s", i+1, got, rec.Hash)
			}
		}
	})

	t.Run("openssl", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Fatalf("openssl is not on PATH; scripts/test-deps.sh installs it: %v", err)
		}
		pubPath := filepath.Join(dir, "audit.pub")
		if err := os.WriteFile(pubPath, MarshalPublicKey(pubOf(testKey(1))), 0o600); err != nil {
			t.Fatal(err)
		}
		var rec Record
		if err := json.Unmarshal(lines[3], &rec); err != nil || rec.Checkpoint == nil {
			t.Fatalf("line 4 is not a checkpoint: %v", err)
		}
		cp := rec.Checkpoint
		msg := fmt.Sprintf("rotor-audit-checkpoint/1\nseq=%d\nhash=%s\ntime=%s\nkey_id=%s\n",
			cp.Seq, cp.Hash, jsonString(t, lines[3], "time"), cp.KeyID)
		sig, _ := base64.StdEncoding.DecodeString(cp.Signature)
		msgPath, sigPath := filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
		if err := errors.Join(os.WriteFile(msgPath, []byte(msg), 0o600), os.WriteFile(sigPath, sig, 0o600)); err != nil {
			t.Fatal(err)
		}
		verify := func() error {
			out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pubPath,
				"-rawin", "-in", msgPath, "-sigfile", sigPath).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
		if err := verify(); err != nil {
			t.Fatalf("openssl rejects the checkpoint: %v", err)
		}
		if err := os.WriteFile(msgPath, []byte(strings.Replace(msg, "seq=", "seq=1", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		if verify() == nil {
			t.Error("openssl accepts a changed checkpoint")
		}
	})
}

// jsonString returns the string value of the checkpoint member key in line,
// as the file spells it.
func jsonString(t *testing.T, line []byte, key string) string {
	t.Helper()
	var v struct {
		Checkpoint map[string]json.RawMessage `json:"checkpoint"`
	}
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(v.Checkpoint[key], &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func readGolden() ([]byte, error) { return os.ReadFile(filepath.Join("testdata", "log.golden")) }

// must is for values in tests that cannot fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
