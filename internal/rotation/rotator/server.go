package rotator

import "strings"

// SameServer reports whether a and b name the same host and port, a zero
// port meaning defaultPort. Host names are compared as written (case
// aside): a master secret must name the server as the user's secret does.
func SameServer(a, b Credentials, defaultPort int) bool {
	port := func(c Credentials) int {
		if c.Port == 0 {
			return defaultPort
		}
		return c.Port
	}
	return strings.EqualFold(a.Host, b.Host) && port(a) == port(b)
}

// MasterElsewhere is the KindInvalid error of master credentials that name
// another server than the secret c; where formats a server for the
// message, as the driver names servers elsewhere.
func MasterElsewhere(master, c Credentials, where func(Credentials) string) error {
	return Errorf(KindInvalid, nil, "the master credentials name %s but the secret names %s: they must name the same server", where(master), where(c))
}
