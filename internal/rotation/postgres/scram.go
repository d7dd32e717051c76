package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
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
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iterations) + ":" + b64(salt) + "$" +
		b64(storedKey[:]) + ":" + b64(serverKey), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
