package postgres

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// The parameters of the verifiers Rotor writes: PostgreSQL's defaults
// (scram_iterations, and the salt length of scram_build_secret).
const (
	scramIterations = 4096
	scramSaltLen    = 16
)

// newVerifier returns a SCRAM-SHA-256 verifier for password with a fresh
// random salt. The password must have passed checkPassword.
func newVerifier(password string) (string, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return scramVerifier(password, salt, scramIterations)
}

// scramVerifier returns the SCRAM-SHA-256 secret PostgreSQL stores in
// pg_authid.rolpassword for password (RFC 5802 section 3, RFC 7677):
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// in standard base64 with padding, where
//
//	SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)
//	StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
//	ServerKey      = HMAC(SaltedPassword, "Server Key")
//
// PostgreSQL would first apply SASLprep to the password; for printable
// ASCII, the only passwords checkPassword lets through, SASLprep changes
// nothing, so the verifier is the one the server would compute and every
// client (libpq, pgx, JDBC) proves the same key.
func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	storedKey, serverKey, err := scramKeys(password, salt, iterations)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iterations) + ":" + b64(salt) + "$" +
		b64(storedKey) + ":" + b64(serverKey), nil
}

// scramKeys returns the StoredKey and ServerKey of password.
func scramKeys(password string, salt []byte, iterations int) (storedKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return nil, nil, err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	sum := sha256.Sum256(clientKey)
	return sum[:], hmacSHA256(salted, "Server Key"), nil
}

// maxCheckIterations bounds the iterations of a stored verifier Rotor
// checks a password against (PostgreSQL's default is 4096): a larger count
// is left to a login.
const maxCheckIterations = 1 << 20

// matchesVerifier reports whether password is the one behind stored, a
// pg_authid.rolpassword value of user ("" for none), and whether that can
// be told here: it can for SCRAM-SHA-256 and MD5 verifiers and printable
// ASCII passwords (which SASLprep leaves as they are).
func matchesVerifier(stored, user, password string) (match, checkable bool) {
	for i := 0; i < len(password); i++ {
		if password[i] < ' ' || password[i] > '~' {
			return false, false
		}
	}
	switch {
	case stored == "":
		return false, true // no password: none logs in
	case strings.HasPrefix(stored, "SCRAM-SHA-256$"):
		iterations, salt, storedKey, serverKey, ok := splitVerifier(stored)
		if !ok || iterations > maxCheckIterations {
			return false, false
		}
		sk, svk, err := scramKeys(password, salt, iterations)
		if err != nil {
			return false, false
		}
		return hmac.Equal(sk, storedKey) && hmac.Equal(svk, serverKey), true
	case len(stored) == 3+2*md5.Size && strings.HasPrefix(stored, "md5"):
		sum := md5.Sum([]byte(password + user))
		return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(stored[3:])) == 1, true
	}
	return false, false
}

// splitVerifier splits SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
func splitVerifier(v string) (iterations int, salt, storedKey, serverKey []byte, ok bool) {
	rest, ok := strings.CutPrefix(v, "SCRAM-SHA-256$")
	if !ok {
		return 0, nil, nil, nil, false
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return 0, nil, nil, nil, false
	}
	iter, salt64, ok1 := strings.Cut(params, ":")
	stored64, server64, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return 0, nil, nil, nil, false
	}
	iterations, err := strconv.Atoi(iter)
	if err != nil || iterations < 1 {
		return 0, nil, nil, nil, false
	}
	dec := base64.StdEncoding.DecodeString
	var err1, err2, err3 error
	salt, err1 = dec(salt64)
	storedKey, err2 = dec(stored64)
	serverKey, err3 = dec(server64)
	if err1 != nil || err2 != nil || err3 != nil || len(storedKey) != sha256.Size || len(serverKey) != sha256.Size {
		return 0, nil, nil, nil, false
	}
	return iterations, salt, storedKey, serverKey, true
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
