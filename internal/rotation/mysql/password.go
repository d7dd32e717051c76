package mysql

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"filippo.io/edwards25519"
)

// nativeHash is the mysql_native_password authentication string of pw:
// '*' and the upper-case hex of SHA1(SHA1(pw)).
func nativeHash(pw string) string {
	h1 := sha1.Sum([]byte(pw))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

// ed25519Hash is MariaDB's ed25519 authentication string of pw: the
// Ed25519 public key whose secret scalar is the clamped first half of
// SHA-512(pw), in base64 without padding.
func ed25519Hash(pw string) string {
	h := sha512.Sum512([]byte(pw))
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic("mysql: clamping 32 bytes cannot fail: " + err.Error())
	}
	a := new(edwards25519.Point).ScalarBaseMult(s)
	return base64.RawStdEncoding.EncodeToString(a.Bytes())
}

// authString is the stored form of pw for plugin, for the plugins whose
// stored form this package computes (mysql_native_password, ed25519), and
// "" for the others.
func authString(plugin, pw string) string {
	switch plugin {
	case pluginNative:
		return nativeHash(pw)
	case pluginEd25519:
		return ed25519Hash(pw)
	}
	return ""
}

// matchesAuthString reports whether pw is the password behind stored, and
// whether the plugin lets that be checked here at all.
func matchesAuthString(plugin, stored, pw string) (match, checkable bool) {
	want := authString(plugin, pw)
	if want == "" {
		return false, false
	}
	if plugin == pluginNative {
		stored = strings.ToUpper(stored)
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(want)) == 1, true
}

// randomPassword is the password a new alternate user has until Set gives
// it the pending one: nobody knows it.
func randomPassword() string {
	return "Rr0!" + rand.Text()
}

// quoteIdent quotes a name as an identifier: backticks, with backticks
// doubled. It needs no escaping of anything else, in any sql_mode.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// accountName is user@host as a statement names an account.
func accountName(user, host string) string {
	return quoteIdent(user) + "@" + quoteIdent(host)
}

// quoteString returns s as a single-quoted string literal. Quotes are
// doubled, which every sql_mode accepts; unless noBackslashEscapes (the
// session's sql_mode has NO_BACKSLASH_ESCAPES), backslashes and the
// characters mysql_real_escape_string escapes are escaped with a
// backslash, and in that mode a backslash is an ordinary character.
func quoteString(s string, noBackslashEscapes bool) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			b.WriteString("''")
		case noBackslashEscapes:
			b.WriteByte(c)
		case c == '\\':
			b.WriteString(`\\`)
		case c == 0:
			b.WriteString(`\0`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
