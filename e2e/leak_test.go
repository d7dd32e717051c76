package e2e

// Secret values must never appear in clear: not in the server's log, not
// in any file of its data dir (the SQLite database, its WAL and shared
// memory, anything else), whether the write that carried them succeeded or
// failed.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// marker is a distinctive value: a random string or random bytes, so that
// any trace of it is unambiguous.
type marker struct {
	desc  string
	value []byte
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	must(t, err)
	return b
}

// randomText is n characters of random letters and digits behind a
// recognisable prefix.
func randomText(t testing.TB, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := randomBytes(t, n)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "LEAK" + string(b)
}

// needles are the byte strings whose presence would reveal m: windows of
// the value from its start and middle, in clear, in hex, and in base64
// (standard and URL alphabets, at each of the three alignments a base64
// encoding of a longer string can cut it at).
func (m marker) needles() map[string][]byte {
	const w = 32
	out := map[string][]byte{}
	starts := []int{0}
	if len(m.value) >= 4*w {
		starts = append(starts, len(m.value)/2)
	}
	for _, s := range starts {
		win := m.value[s:min(s+w, len(m.value))]
		out[fmt.Sprintf("clear@%d", s)] = win
		out[fmt.Sprintf("hex@%d", s)] = []byte(hex.EncodeToString(win))
		out[fmt.Sprintf("HEX@%d", s)] = []byte(strings.ToUpper(hex.EncodeToString(win)))
		for k := range 3 {
			if len(win) < k+24 {
				break
			}
			part := win[k : k+24] // 24 bytes: 32 base64 characters, no padding
			out[fmt.Sprintf("base64@%d+%d", s, k)] = []byte(base64.StdEncoding.EncodeToString(part))
			out[fmt.Sprintf("base64url@%d+%d", s, k)] = []byte(base64.URLEncoding.EncodeToString(part))
		}
	}
	return out
}

// findLeaks reports every needle of every marker found in data.
func findLeaks(where string, data []byte, markers []marker) []string {
	var found []string
	for _, m := range markers {
		for form, n := range m.needles() {
			if bytes.Contains(data, n) {
				found = append(found, fmt.Sprintf("%s contains %s (%s)", where, m.desc, form))
			}
		}
	}
	return found
}

// scanDir looks for markers in every regular file under dir.
func scanDir(t *testing.T, dir string, markers []marker) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files = append(files, fmt.Sprintf("%s (%d bytes)", rel, len(data)))
		for _, leak := range findLeaks(rel, data, markers) {
			t.Error(leak)
		}
		return nil
	})
	must(t, err)
	t.Logf("scanned %s", strings.Join(files, ", "))
	if _, err := os.Stat(filepath.Join(dir, "rotor.db")); err != nil {
		t.Errorf("no database to scan: %v", err)
	}
}

// TestLeakScanner checks the scanner itself: it must find a value however
// it is embedded.
func TestLeakScanner(t *testing.T) {
	t.Parallel()
	v := randomBytes(t, 1000)
	m := []marker{{"v", v}}
	for _, tc := range []struct {
		desc string
		data []byte
	}{
		{"clear", append([]byte("xx"), v...)},
		{"hex", []byte("x" + hex.EncodeToString(v))},
		{"upper hex", []byte(strings.ToUpper(hex.EncodeToString(v[500:600])))},
		{"base64", []byte(base64.StdEncoding.EncodeToString(v))},
		{"base64 after one byte", []byte(base64.StdEncoding.EncodeToString(append([]byte{1}, v...)))},
		{"base64 after two bytes", []byte(base64.RawStdEncoding.EncodeToString(append([]byte{1, 2}, v...)))},
		{"base64url", []byte(base64.RawURLEncoding.EncodeToString(append([]byte{1, 2}, v...)))},
		{"middle only", v[400:700]},
	} {
		if len(findLeaks(tc.desc, tc.data, m)) == 0 {
			t.Errorf("%s: not found", tc.desc)
		}
	}
	if leaks := findLeaks("noise", randomBytes(t, 1<<20), m); len(leaks) != 0 {
		t.Errorf("found in random data: %v", leaks)
	}
}

func TestNoSecretInLogsOrDataDir(t *testing.T) {
	t.Parallel()
	srv := startServer(t, withArgs("--log-level", "debug"))
	c := client(t, srv)
	ctx := t.Context()

	var markers []marker
	text := func(desc string, n int) string {
		v := randomText(t, n)
		markers = append(markers, marker{desc, []byte(v)})
		return v
	}
	binary := func(desc string, n int) []byte {
		v := randomBytes(t, n)
		markers = append(markers, marker{desc, v})
		return v
	}
	// The test's own root secret key must not be stored or logged in
	// clear either.
	markers = append(markers, marker{"the root secret access key", []byte(testSecretAccessKey)})

	name := uniqueName(t)
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(text("a created string", 40))})
	must(t, err)
	binName := uniqueName(t)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(binName), SecretBinary: binary("a created binary", 48)})
	must(t, err)
	pw := text("a password inside JSON", 40)
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(`{"username":"app","password":"` + pw + `"}`)})
	must(t, err)
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(binName), SecretBinary: binary("a long binary", 60000)})
	must(t, err)
	_, err = c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String(name), SecretString: aws.String(text("a long string", 60000))})
	must(t, err)

	// Writes that fail, each carrying a value.
	tok := token(t)
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String(text("the first write of a token", 40))})
	must(t, err)
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String(text("a retry with the same token and another value", 40))})
	wantCode(t, err, "ResourceExistsException")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(text("a pending string", 64)), VersionStages: []string{"AWSPENDING"},
	})
	must(t, err)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad name!"), SecretString: aws.String(text("a create with an invalid name", 40))})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(text("a create of an existing name", 40))})
	wantCode(t, err, "ResourceExistsException")
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(uniqueName(t)), SecretString: aws.String(text("an oversized string", maxValueLen+1))})
	wantCode(t, err, "ValidationException")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(binName), SecretBinary: binary("an oversized binary", maxValueLen+1)})
	wantCode(t, err, "ValidationException")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name + "/nope"), SecretString: aws.String(text("a put to a missing secret", 40))})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("x"), SecretBinary: binary("a put with both values", 40)})
	wantCode(t, err, "InvalidParameterException")
	deleted := uniqueName(t)
	createString(t, c, deleted, "short-lived")
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(deleted)})
	must(t, err)
	_, err = c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String(deleted), SecretString: aws.String(text("an update of a deleted secret", 40))})
	wantCode(t, err, "InvalidRequestException")

	// Raw requests the server cannot even decode or authenticate.
	broken := text("a value in malformed JSON", 40)
	wantError(t, do(t, rawRequest{target: "secretsmanager.CreateSecret", body: []byte(`{"Name":"x","SecretString":"` + broken + `",`), key: rootKey()}.build(t, srv)), 400, "SerializationException")
	unsigned := text("a value in an unsigned request", 40)
	wantError(t, do(t, rawRequest{target: "secretsmanager.CreateSecret", body: []byte(`{"Name":"x","SecretString":"` + unsigned + `"}`)}.build(t, srv)), 400, "MissingAuthenticationTokenException")
	badSig := text("a value in a badly signed request", 40)
	wantError(t, do(t, rawRequest{target: "secretsmanager.CreateSecret", body: []byte(`{"Name":"x","SecretString":"` + badSig + `"}`),
		key: &aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: "wrong-secret-wrong-secret"}}.build(t, srv)), 400, "InvalidSignatureException")
	typed := text("a value of the wrong JSON type", 40)
	wantError(t, do(t, rawRequest{target: "secretsmanager.CreateSecret", body: []byte(`{"Name":"x","SecretString":["` + typed + `"]}`), key: rootKey()}.build(t, srv)), 400, "SerializationException")
	badB64 := text("a value in invalid base64", 40)
	wantError(t, do(t, rawRequest{target: "secretsmanager.CreateSecret", body: []byte(`{"Name":"x","SecretBinary":"` + badB64 + `!!"}`), key: rootKey()}.build(t, srv)), 400, "SerializationException")

	// Reads of every stored value.
	for _, id := range []string{name, binName} {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		must(t, err)
	}
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("AWSPENDING")})
	must(t, err)
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{name, binName, deleted}})
	must(t, err)
	_, err = c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name), IncludeDeprecated: aws.Bool(true)})
	must(t, err)

	t.Run("metrics", func(t *testing.T) {
		exp := scrape(t, srv)
		if !strings.Contains(exp, "rotor_requests_total") {
			t.Fatalf("GET /metrics has no rotor_requests_total; nothing to check:\n%.2000s", exp)
		}
		for _, leak := range findLeaks("GET /metrics", []byte(exp), markers) {
			t.Error(leak)
		}
	})

	t.Run("audit log while running", func(t *testing.T) {
		data, err := os.ReadFile(auditLogPath(srv.dataDir))
		must(t, err)
		if !bytes.Contains(data, []byte(`"event_name":"PutSecretValue"`)) {
			t.Fatalf("the audit log does not record requests; nothing to check:\n%.2000s", data)
		}
		for _, leak := range findLeaks("the audit log", data, markers) {
			t.Error(leak)
		}
	})

	t.Run("data dir while running", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(srv.dataDir, "rotor.db-wal")); err != nil {
			t.Errorf("no WAL file while running: %v", err)
		}
		scanDir(t, srv.dataDir, markers)
	})

	code, err := srv.stop()
	must(t, err)
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}

	t.Run("log", func(t *testing.T) {
		logs := srv.logs.String()
		if !strings.Contains(logs, `"operation":"PutSecretValue"`) || !strings.Contains(logs, `"level":"DEBUG"`) && !strings.Contains(logs, `"level":"INFO"`) {
			t.Fatalf("the log does not record requests; nothing to check:\n%.2000s", logs)
		}
		for _, leak := range findLeaks("the log", []byte(logs), markers) {
			t.Error(leak)
		}
	})

	t.Run("data dir after stop", func(t *testing.T) {
		if _, err := os.Stat(auditLogPath(srv.dataDir)); err != nil {
			t.Errorf("no audit log to scan: %v", err)
		}
		scanDir(t, srv.dataDir, markers) // the audit log among its files
	})
}
