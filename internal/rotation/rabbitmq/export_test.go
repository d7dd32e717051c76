package rabbitmq

// Logins is the number of logins (GET /api/whoami) r attempted.
func Logins(r *Rotator) int64 { return r.logins.Load() }
