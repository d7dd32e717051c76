package mysql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// server is what a connection learnt about the server: flavour, version
// and how string literals are escaped in the session.
type server struct {
	mariadb             bool
	major, minor, patch int
	noBackslashEscapes  bool // NO_BACKSLASH_ESCAPES is in the session's sql_mode
}

// parseServer reads VERSION() ("10.11.19-MariaDB-0+deb12u1", "8.0.36",
// "8.0.mysql_aurora.3.05.2") and @@SESSION.sql_mode.
func parseServer(version, sqlMode string) server {
	s := server{mariadb: strings.Contains(strings.ToLower(version), "mariadb")}
	nums := [3]int{}
	rest := version
	for i := range nums {
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j == 0 {
			break
		}
		nums[i], _ = strconv.Atoi(rest[:j])
		rest = rest[j:]
		if !strings.HasPrefix(rest, ".") {
			break
		}
		rest = rest[1:]
	}
	s.major, s.minor, s.patch = nums[0], nums[1], nums[2]
	for _, m := range strings.Split(sqlMode, ",") {
		if strings.EqualFold(strings.TrimSpace(m), "NO_BACKSLASH_ESCAPES") {
			s.noBackslashEscapes = true
		}
	}
	return s
}

func (s server) String() string {
	name := "MySQL"
	if s.mariadb {
		name = "MariaDB"
	}
	return fmt.Sprintf("%s %d.%d.%d", name, s.major, s.minor, s.patch)
}

// atLeast reports whether the version is at least major.minor.patch.
func (s server) atLeast(major, minor, patch int) bool {
	if s.major != major {
		return s.major > major
	}
	if s.minor != minor {
		return s.minor > minor
	}
	return s.patch >= patch
}

// supported fails for servers without ALTER USER and CREATE USER IF NOT
// EXISTS.
func (s server) supported() error {
	if s.mariadb && !s.atLeast(10, 2, 0) || !s.mariadb && !s.atLeast(5, 7, 6) {
		return rotator.Errorf(rotator.KindTarget, nil, "%v is not supported: rotation needs MariaDB 10.2 or MySQL 5.7.6 or later", s)
	}
	return nil
}

// maxUserLen is the server's bound on user names, in bytes (the server
// counts characters; bytes are the safe side).
func (s server) maxUserLen() int {
	switch {
	case s.mariadb:
		return 80
	case s.atLeast(5, 7, 8):
		return 32
	}
	return 16
}

// quote returns s as a string literal for this session.
func (s server) quote(v string) string { return quoteString(v, s.noBackslashEscapes) }

// The authentication plugins whose password Set can change.
const (
	pluginNative  = "mysql_native_password"
	pluginEd25519 = "ed25519"
	pluginCaching = "caching_sha2_password"
	pluginSHA256  = "sha256_password"
)

// checkPlugin fails for plugins that have no password Set can change.
func (s server) checkPlugin(plugin, acct string) error {
	switch {
	case plugin == pluginNative:
		return nil
	case s.mariadb && plugin == pluginEd25519 && s.atLeast(10, 4, 0):
		return nil
	case !s.mariadb && (plugin == pluginCaching || plugin == pluginSHA256):
		return nil
	}
	return rotator.Errorf(rotator.KindInvalid, nil, "account %s authenticates with plugin %q, which has no password rotor can rotate on %v (supported: %s)",
		acct, plugin, s, strings.Join(s.plugins(), ", "))
}

func (s server) plugins() []string {
	if s.mariadb {
		return []string{pluginNative, pluginEd25519 + " (10.4+)"}
	}
	return []string{pluginNative, pluginCaching, pluginSHA256}
}

// identified returns the authentication clause of CREATE USER and ALTER
// USER that gives an account with plugin the password pw. With allowHash,
// the password is hashed here where the flavour allows it (see the package
// comment); otherwise it is sent as a literal, for the server to hash.
// The result contains a password or its hash: it must never be logged or
// put in an error.
func (s server) identified(plugin, pw string, allowHash bool) string {
	if s.mariadb {
		if allowHash {
			return "IDENTIFIED VIA " + plugin + " USING " + s.quote(authString(plugin, pw))
		}
		if s.atLeast(10, 4, 0) {
			return "IDENTIFIED VIA " + plugin + " USING PASSWORD(" + s.quote(pw) + ")"
		}
		return "IDENTIFIED BY " + s.quote(pw)
	}
	if plugin == pluginNative && allowHash {
		return "IDENTIFIED WITH " + pluginNative + " AS " + s.quote(authString(plugin, pw))
	}
	return "IDENTIFIED WITH " + plugin + " BY " + s.quote(pw)
}

// setOwnPassword returns the statement with which a user without
// privileges changes its own password to pw; old is the password it logged
// in with and plugin its authentication plugin (needed on MariaDB only).
// Like identified, the result contains a password or its hash.
func (s server) setOwnPassword(plugin, pw, old string, allowHash bool) string {
	if s.mariadb {
		// ALTER USER CURRENT_USER() needs CREATE USER on MariaDB; SET
		// PASSWORD does not, and from 10.4 it keeps the account's plugin.
		if allowHash {
			return "SET PASSWORD = " + s.quote(authString(plugin, pw))
		}
		return "SET PASSWORD = PASSWORD(" + s.quote(pw) + ")"
	}
	stmt := "ALTER USER USER() IDENTIFIED BY " + s.quote(pw)
	if s.atLeast(8, 0, 13) {
		// Required when the account has PASSWORD REQUIRE CURRENT, checked
		// (and harmless) otherwise.
		stmt += " REPLACE " + s.quote(old)
	}
	return stmt
}
