package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
)

// storedLogin is what pg_authid holds about a role's login.
type storedLogin struct {
	exists   bool
	password string // rolpassword: a SCRAM-SHA-256 or MD5 verifier, "" for none
	canLogin bool   // LOGIN, and VALID UNTIL not passed
}

// matches reports whether password logs in as the role as far as its
// stored verifier tells (pg_hba.conf aside), and whether that can be told
// here (see matchesVerifier).
func (l storedLogin) matches(user, password string) (match, checkable bool) {
	if !l.exists || !l.canLogin {
		return false, true
	}
	return matchesVerifier(l.password, user, password)
}

// storedPassword reads the pg_authid row of role name, as master.
// readable is false when master may not read pg_authid: only superusers
// may (not RDS's master, for one).
func storedPassword(ctx context.Context, conn *pgx.Conn, name string) (l storedLogin, readable bool, err error) {
	err = conn.QueryRow(ctx, "SELECT pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT')").Scan(&readable)
	if err != nil || !readable {
		return l, false, err
	}
	err = conn.QueryRow(ctx, `SELECT COALESCE(rolpassword, ''),
		rolcanlogin AND (rolvaliduntil IS NULL OR rolvaliduntil > pg_catalog.now())
		FROM pg_catalog.pg_authid WHERE rolname = $1`, name).Scan(&l.password, &l.canLogin)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return l, true, nil
	case err != nil:
		return l, true, err
	}
	l.exists = true
	return l, true, nil
}

// maxMemo bounds the pairs a matchMemo remembers; when full it starts
// over.
const maxMemo = 4096

// matchMemo remembers (user, verifier, password) triples known to match:
// the verifiers Set computed and the checks that succeeded. Proving a
// password Rotor itself set — the current password of an alternating pair
// is the previous rotation's pending one — then costs no PBKDF2. Entries
// are HMACs under a key made per Rotator: nothing in the memo reveals a
// password, and a verifier that was never stored simply never comes back
// from pg_authid to be looked up.
type matchMemo struct {
	key []byte
	mu  sync.Mutex
	m   map[[sha256.Size]byte]struct{}
}

func newMatchMemo() *matchMemo {
	k := make([]byte, 32)
	rand.Read(k)
	return &matchMemo{key: k, m: map[[sha256.Size]byte]struct{}{}}
}

func (mm *matchMemo) id(user, verifier, password string) (id [sha256.Size]byte) {
	h := hmac.New(sha256.New, mm.key)
	for _, s := range []string{user, verifier, password} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	copy(id[:], h.Sum(nil))
	return id
}

func (mm *matchMemo) add(user, verifier, password string) {
	id := mm.id(user, verifier, password)
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if len(mm.m) >= maxMemo {
		clear(mm.m)
	}
	mm.m[id] = struct{}{}
}

func (mm *matchMemo) has(user, verifier, password string) bool {
	id := mm.id(user, verifier, password)
	mm.mu.Lock()
	defer mm.mu.Unlock()
	_, ok := mm.m[id]
	return ok
}

// matches is l.matches, remembered in r's memo.
func (r *Rotator) matches(l storedLogin, user, password string) (match, checkable bool) {
	if l.exists && l.canLogin && l.password != "" && r.memo.has(user, l.password, password) {
		return true, true
	}
	match, checkable = l.matches(user, password)
	if match {
		r.memo.add(user, l.password, password)
	}
	return match, checkable
}
