package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// parseVerifier splits a SCRAM-SHA-256 secret into its parts.
func parseVerifier(t *testing.T, v string) (iterations int, salt, storedKey, serverKey []byte) {
	t.Helper()
	rest, ok := strings.CutPrefix(v, "SCRAM-SHA-256$")
	if !ok {
		t.Fatalf("verifier %q lacks the SCRAM-SHA-256$ prefix", v)
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		t.Fatalf("verifier %q lacks a $ between salt and keys", v)
	}
	iterStr, saltB64, ok1 := strings.Cut(iterSalt, ":")
	storedB64, serverB64, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		t.Fatalf("verifier %q is malformed", v)
	}
	iterations, err := strconv.Atoi(iterStr)
	if err != nil {
		t.Fatal(err)
	}
	dec := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("verifier %q: %v", v, err)
		}
		return b
	}
	return iterations, dec(saltB64), dec(storedB64), dec(serverB64)
}

// The exchange of RFC 7677 section 3: a verifier for "pencil" with the
// server's salt and iteration count must accept the client's proof and
// produce the server's signature.
func TestVerifierRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	v, err := scramVerifier("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	_, _, storedKey, serverKey := parseVerifier(t, v)
	authMessage := "n=user,r=rOprNGfwEbeRWgbNEkqO," +
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	proof, _ := base64.StdEncoding.DecodeString("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")

	// What the server does with the client's proof.
	clientSig := hmacSHA256(storedKey, authMessage)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ clientSig[i]
	}
	if got := sha256.Sum256(clientKey); !bytes.Equal(got[:], storedKey) {
		t.Errorf("the RFC's client proof does not match StoredKey of %s", v)
	}
	serverSig := base64.StdEncoding.EncodeToString(hmacSHA256(serverKey, authMessage))
	if want := "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; serverSig != want {
		t.Errorf("server signature = %s, want %s", serverSig, want)
	}
}

func TestNewVerifierFormat(t *testing.T) {
	a, err := newVerifier("same password")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newVerifier("same password")
	if a == b {
		t.Error("two verifiers of one password are equal: the salt is not random")
	}
	iterations, salt, storedKey, serverKey := parseVerifier(t, a)
	if iterations != 4096 || len(salt) != 16 || len(storedKey) != 32 || len(serverKey) != 32 {
		t.Errorf("verifier %s: iterations %d, salt %d bytes, keys %d and %d bytes; want 4096, 16, 32, 32",
			a, iterations, len(salt), len(storedKey), len(serverKey))
	}
	for _, c := range a {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=$:-", c) {
			t.Errorf("verifier %s has character %q", a, c)
		}
	}
}

// PostgreSQL's own hashing of a cleartext password and ours agree, for
// passwords with every printable ASCII character.
func TestVerifierMatchesPostgres(t *testing.T) {
	pg := dbtest.SharedPostgres(t)
	ctx := t.Context()
	var all strings.Builder
	for c := byte(' '); c <= '~'; c++ {
		all.WriteByte(c)
	}
	for i, pw := range []string{"pencil", all.String(), `a'b"c\d;e$f`, " leading and trailing ", "x"} {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			role := pg.CreateUser(t, "kat", "placeholder")
			sql := "SET password_encryption = 'scram-sha-256'; ALTER ROLE " + ident(role) + " PASSWORD " + literal(pw)
			if err := pg.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
			stored := superQuery(t, pg, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
			iterations, salt, _, _ := parseVerifier(t, stored)
			got, err := scramVerifier(pw, salt, iterations)
			if err != nil {
				t.Fatal(err)
			}
			if got != stored {
				t.Errorf("password %q:\n got %s\nwant %s", pw, got, stored)
			}
		})
	}
}

func superQuery(t *testing.T, pg *dbtest.Postgres, sql string, args ...any) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(pg.DSN(pg.SuperUser, pg.SuperPassword, ""))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"simple", true},
		{" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", true},
		{"", false},
		{"tab\there", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"caf\u00e9", false},
		{"\u00a0nbsp", false},
	} {
		err := checkPassword(tc.pw)
		if (err == nil) != tc.ok {
			t.Errorf("checkPassword(%q) = %v, want ok %v", tc.pw, err, tc.ok)
		}
		if err != nil {
			if k := rotator.KindOf(err); k != rotator.KindInvalid {
				t.Errorf("checkPassword(%q) kind = %v, want KindInvalid", tc.pw, k)
			}
			if tc.pw != "" && strings.Contains(err.Error(), tc.pw) {
				t.Errorf("checkPassword(%q) error contains the password", tc.pw)
			}
		}
	}
}

func TestKindOf(t *testing.T) {
	for code, want := range map[string]rotator.Kind{
		"28P01": rotator.KindAuth, "28000": rotator.KindAuth,
		"42501": rotator.KindPermission,
		"42704": rotator.KindInvalid, "3D000": rotator.KindInvalid,
		"08006": rotator.KindUnreachable, "53300": rotator.KindUnreachable, "57P03": rotator.KindUnreachable,
		"25006": rotator.KindTarget, "42601": rotator.KindTarget, "XX000": rotator.KindTarget,
	} {
		if got := kindOf(code); got != want {
			t.Errorf("kindOf(%s) = %v, want %v", code, got, want)
		}
	}
}

// A server message quoting a secret, pgx's connection errors (which name
// their configuration) and arbitrary errors all come out scrubbed.
func TestScrubber(t *testing.T) {
	sc := scrubber{"hunter2", "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5"}
	pgErr := &pgconn.PgError{Severity: "ERROR", Code: "42601", Message: `syntax error at or near "hunter2"`,
		Detail: "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5", Hint: "hunter2?", InternalQuery: "hunter2", Where: "hunter2"}
	for _, tc := range []struct {
		name string
		err  error
		kind rotator.Kind
	}{
		{"server error", fmt.Errorf("wrapped: %w", pgErr), rotator.KindTarget},
		{"auth", &pgconn.PgError{Severity: "FATAL", Code: "28P01", Message: `password authentication failed for user "u"`}, rotator.KindAuth},
		{"timeout", fmt.Errorf("hunter2: %w", context.DeadlineExceeded), rotator.KindUnreachable},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, rotator.KindUnreachable},
		{"eof", fmt.Errorf("hunter2 said: %w", io.ErrUnexpectedEOF), rotator.KindTarget},
		{"other", errors.New("password is hunter2"), rotator.KindTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sc.fail(tc.err, "do %q", "something")
			if k := rotator.KindOf(err); k != tc.kind {
				t.Errorf("kind = %v, want %v (%v)", k, tc.kind, err)
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", errors.Unwrap(err))} {
				for _, secret := range sc {
					if strings.Contains(text, secret) {
						t.Errorf("error text %q contains a secret", text)
					}
				}
			}
		})
	}
	// The cause keeps the SQLSTATE for callers.
	var got *pgconn.PgError
	if err := sc.fail(pgErr, "x"); !errors.As(err, &got) || got.Code != "42601" {
		t.Errorf("the cause of a server error is not a *pgconn.PgError with its code: %#v", got)
	}
}

func TestSplitIdentList(t *testing.T) {
	for in, want := range map[string][]string{
		`"$user", public`:               {"$user", "public"},
		`public`:                        {"public"},
		`"My ""odd"" schema", b, "c,d"`: {`My "odd" schema`, "b", "c,d"},
		``:                              nil,
		`a,b`:                           {"a", "b"},
	} {
		if got := splitIdentList(in); !slices.Equal(got, want) {
			t.Errorf("splitIdentList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                        "'plain'",
		"it's":                         "'it''s'",
		`back\`:                        `E'back\\'`,
		`a'b\c`:                        `E'a''b\\c'`,
		"SCRAM-SHA-256$4096:abc==$d:e": "'SCRAM-SHA-256$4096:abc==$d:e'",
	} {
		if got := literal(in); got != want {
			t.Errorf("literal(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestLiteralRoundTrips(t *testing.T) {
	pg := dbtest.SharedPostgres(t)
	for _, s := range []string{"plain", "it's", `back\slash`, `a'b\c"d`, "odd \"Q'u-1"} {
		got := superQuery(t, pg, "SELECT "+literal(s))
		if got != s {
			t.Errorf("SELECT %s = %q, want %q", literal(s), got, s)
		}
		got = superQuery(t, pg, "SELECT "+gucValue("search_path", `"`+strings.ReplaceAll(s, `"`, `""`)+`"`)+"::text")
		if got != s {
			t.Errorf("list element round trip of %q = %q", s, got)
		}
	}
}

func TestMatchesVerifier(t *testing.T) {
	salt := []byte("0123456789abcdef")
	scram, err := scramVerifier("right", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	huge, _ := scramVerifier("right", salt, 2)
	huge = strings.Replace(huge, "$2:", "$"+strconv.Itoa(maxCheckIterations+1)+":", 1)
	md5 := "md5" + "d7a2607168e46d4c17b78c9163fde3a7" // md5("right" + "u")
	for _, tc := range []struct {
		name, stored, user, pw string
		match, checkable       bool
	}{
		{"scram, right password", scram, "u", "right", true, true},
		{"scram, wrong password", scram, "u", "wrong", false, true},
		{"scram, user does not matter", scram, "other", "right", true, true},
		{"md5, right password", md5, "u", "right", true, true},
		{"md5, other user", md5, "v", "right", false, true},
		{"md5, wrong password", md5, "u", "wrong", false, true},
		{"no password", "", "u", "right", false, true},
		{"non-ASCII password: SASLprep", scram, "u", "caf\u00e9", false, false},
		{"too many iterations", huge, "u", "right", false, false},
		{"malformed scram", "SCRAM-SHA-256$4096:c2FsdA==$bad", "u", "right", false, false},
		{"unknown format", "plain:text", "u", "right", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			match, checkable := matchesVerifier(tc.stored, tc.user, tc.pw)
			if match != tc.match || checkable != tc.checkable {
				t.Errorf("matchesVerifier = %v, %v; want %v, %v", match, checkable, tc.match, tc.checkable)
			}
		})
	}
}

// Verifiers PostgreSQL computed itself (SCRAM and MD5) are recognised by
// storedPassword and matchesVerifier as a superuser master reads them.
func TestStoredPasswordMatchesServer(t *testing.T) {
	pg := dbtest.SharedPostgres(t)
	ctx := t.Context()
	var all strings.Builder
	for c := byte(' '); c <= '~'; c++ {
		all.WriteByte(c)
	}
	cfg, err := pgx.ParseConfig(pg.DSN(pg.SuperUser, pg.SuperPassword, ""))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, enc := range []string{"scram-sha-256", "md5"} {
		for i, pw := range []string{"pencil", all.String()} {
			t.Run(enc+strconv.Itoa(i), func(t *testing.T) {
				role := pg.CreateUser(t, "stored", "placeholder")
				sql := "SET password_encryption = '" + enc + "'; ALTER ROLE " + ident(role) + " PASSWORD " + literal(pw)
				if err := pg.Exec(ctx, sql); err != nil {
					t.Fatal(err)
				}
				l, readable, err := storedPassword(ctx, conn, role)
				if err != nil || !readable || !l.exists || !l.canLogin {
					t.Fatalf("storedPassword = %+v, %v, %v", l.exists, readable, err)
				}
				if match, checkable := l.matches(role, pw); !match || !checkable {
					t.Errorf("the password does not match its %s verifier: %v, %v", enc, match, checkable)
				}
				if match, _ := l.matches(role, pw+"x"); match {
					t.Errorf("a wrong password matches the %s verifier", enc)
				}
				if err := pg.Exec(ctx, "ALTER ROLE "+ident(role)+" VALID UNTIL '2000-01-01'"); err != nil {
					t.Fatal(err)
				}
				if l, _, _ := storedPassword(ctx, conn, role); l.canLogin {
					t.Error("a role past VALID UNTIL can log in")
				}
			})
		}
	}
	if l, readable, err := storedPassword(ctx, conn, "no such role"); err != nil || !readable || l.exists {
		t.Errorf("storedPassword of a missing role = %+v, %v, %v", l.exists, readable, err)
	}
}
