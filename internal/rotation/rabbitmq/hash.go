package rabbitmq

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"hash"
)

// passwordMatches reports whether password is the one whose hash RabbitMQ
// stores for u. RabbitMQ's internal users store base64(salt ‖
// H(salt ‖ password)) with a 4-byte random salt, H named by
// hashing_algorithm (SHA-256 by default since 3.6; SHA-512; MD5 for users
// from older versions, which have no algorithm). known is false when the
// hash cannot tell: the user has no password hash (it cannot log in with a
// password, or another backend authenticates it) or the algorithm is not
// one of these; the caller then logs in to find out.
func passwordMatches(u *userInfo, password string) (match, known bool) {
	if u == nil || u.PasswordHash == "" {
		return false, false
	}
	var h hash.Hash
	switch u.HashingAlgorithm {
	case "rabbit_password_hashing_sha256":
		h = sha256.New()
	case "rabbit_password_hashing_sha512":
		h = sha512.New()
	case "rabbit_password_hashing_md5", "":
		h = md5.New()
	default:
		return false, false
	}
	stored, err := base64.StdEncoding.DecodeString(u.PasswordHash)
	if err != nil || len(stored) != 4+h.Size() {
		return false, false
	}
	h.Write(stored[:4])
	h.Write([]byte(password))
	return subtle.ConstantTimeCompare(h.Sum(nil), stored[4:]) == 1, true
}
