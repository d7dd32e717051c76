package redis

import "github.com/rotor-secrets/rotor/internal/rotation/connpool"

// Logins is the number of logins r attempted.
func Logins(r *Rotator) int64 { return r.logins.Load() }

// PoolStats are the counters of r's master connections.
func PoolStats(r *Rotator) connpool.Stats { return r.pool.Stats() }

// PasswordHash is the form in which Redis stores a password.
var PasswordHash = passwordHash
