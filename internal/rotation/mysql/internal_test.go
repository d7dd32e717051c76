package mysql

import (
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	driver "github.com/go-sql-driver/mysql"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

func TestHashes(t *testing.T) {
	for _, tc := range []struct{ plugin, pw, want string }{
		// Computed by MariaDB 10.11: SELECT PASSWORD('x'), and the
		// authentication_string of a user IDENTIFIED VIA ed25519 USING
		// PASSWORD('p1').
		{pluginNative, "x", "*B69027D44F6E5EDC07F1AEAD1477967B16F28227"},
		{pluginEd25519, "p1", "0cBZTrKx5x9mpSNQ5xpt6j3rJUcqumPHAV9MZCfsJ9g"},
		{pluginEd25519, "p2", "fjFCkIxN0vBduZfJd9sKUVy+MJH5swPJ2XE++OC2J+s"},
		{pluginCaching, "p1", ""},
	} {
		if got := authString(tc.plugin, tc.pw); got != tc.want {
			t.Errorf("authString(%s, %q) = %q, want %q", tc.plugin, tc.pw, got, tc.want)
		}
	}
	if ok, checkable := matchesAuthString(pluginNative, strings.ToLower(nativeHash("x")), "x"); !ok || !checkable {
		t.Errorf("a lower-case native hash does not match")
	}
	if ok, _ := matchesAuthString(pluginEd25519, ed25519Hash("x"), "y"); ok {
		t.Errorf("a wrong password matches")
	}
	if _, checkable := matchesAuthString(pluginCaching, "$A$005$...", "x"); checkable {
		t.Errorf("caching_sha2_password reported checkable")
	}
}

// TestHashesMatchServer compares the native hash with the server's for
// passwords of every byte.
func TestHashesMatchServer(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	d, err := sql.Open("mysql", m.DSN(m.SuperUser, m.SuperPassword, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	all := make([]byte, 0, 255)
	for c := 1; c < 256; c++ {
		all = append(all, byte(c))
	}
	for _, pw := range []string{"a", "pässwörd ☃", string(all), strings.Repeat("x", 1000)} {
		var want string
		if err := d.QueryRowContext(t.Context(), "SELECT PASSWORD(?)", pw).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := nativeHash(pw); got != want {
			t.Errorf("nativeHash(%q) = %s, server says %s", pw, got, want)
		}
	}
}

// TestQuoteStringRoundTrip sends quoted literals to the server in both
// escaping modes and checks that it reads back every byte.
func TestQuoteStringRoundTrip(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	values := []string{"", "'", "''", `\`, `\'`, `'\`, "\\\\'", "a\x00b", "\n\r\t\x1a\b", `%_`, "`", `"`, "☃", "end\\"}
	var all []byte
	for c := 1; c < 256; c++ {
		all = append(all, byte(c))
	}
	values = append(values, string(all))
	for _, nbe := range []bool{false, true} {
		t.Run(fmt.Sprintf("NO_BACKSLASH_ESCAPES=%v", nbe), func(t *testing.T) {
			d, err := sql.Open("mysql", m.DSN(m.SuperUser, m.SuperPassword, ""))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			conn, err := d.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			mode := "STRICT_TRANS_TABLES"
			if nbe {
				mode += ",NO_BACKSLASH_ESCAPES"
			}
			if _, err := conn.ExecContext(t.Context(), "SET SESSION sql_mode = '"+mode+"'"); err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				if nbe && strings.ContainsRune(v, 0) {
					continue // a NUL cannot be written in this mode; Set refuses NUL anyway
				}
				var got []byte
				if err := conn.QueryRowContext(t.Context(), "SELECT CAST("+quoteString(v, nbe)+" AS BINARY)").Scan(&got); err != nil {
					t.Fatalf("%q: %v", v, err)
				}
				if string(got) != v {
					t.Errorf("quoteString(%q) reads back as %q", v, got)
				}
			}
		})
	}
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct {
		version, mode string
		want          server
		maxLen        int
		ok            bool
	}{
		{"10.11.19-MariaDB-0+deb12u1", "STRICT_TRANS_TABLES", server{mariadb: true, major: 10, minor: 11, patch: 19}, 80, true},
		{"8.0.36", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES", server{major: 8, minor: 0, patch: 36, noBackslashEscapes: true}, 32, true},
		{"8.0.mysql_aurora.3.05.2", "", server{major: 8}, 32, true},
		{"5.7.12-log", "", server{major: 5, minor: 7, patch: 12}, 32, true},
		{"5.7.5", "", server{major: 5, minor: 7, patch: 5}, 16, false},
		{"10.1.48-MariaDB", "", server{mariadb: true, major: 10, minor: 1, patch: 48}, 80, false},
	} {
		got := parseServer(tc.version, tc.mode)
		if got != tc.want {
			t.Errorf("parseServer(%q, %q) = %+v, want %+v", tc.version, tc.mode, got, tc.want)
		}
		if got.maxUserLen() != tc.maxLen {
			t.Errorf("%q: maxUserLen = %d, want %d", tc.version, got.maxUserLen(), tc.maxLen)
		}
		if err := got.supported(); (err == nil) != tc.ok {
			t.Errorf("%q: supported() = %v, want ok=%v", tc.version, err, tc.ok)
		}
	}
}

func TestStatements(t *testing.T) {
	maria := server{mariadb: true, major: 10, minor: 11}
	maria103 := server{mariadb: true, major: 10, minor: 3}
	my8 := server{major: 8, minor: 0, patch: 36, noBackslashEscapes: true}
	my57 := server{major: 5, minor: 7, patch: 30}
	h := nativeHash("pw'")
	for _, tc := range []struct{ name, got, want string }{
		{"mariadb native", maria.identified(pluginNative, "pw'", true), "IDENTIFIED VIA mysql_native_password USING '" + h + "'"},
		{"mariadb ed25519", maria.identified(pluginEd25519, "pw'", true), "IDENTIFIED VIA ed25519 USING '" + ed25519Hash("pw'") + "'"},
		{"mariadb cleartext", maria.identified(pluginNative, `pw'\`, false), `IDENTIFIED VIA mysql_native_password USING PASSWORD('pw''\\')`},
		{"mariadb 10.3 cleartext", maria103.identified(pluginNative, "pw", false), "IDENTIFIED BY 'pw'"},
		{"mysql native", my8.identified(pluginNative, "pw'", true), "IDENTIFIED WITH mysql_native_password AS '" + h + "'"},
		{"mysql caching_sha2", my8.identified(pluginCaching, `pw'\`, true), `IDENTIFIED WITH caching_sha2_password BY 'pw''\'`},
		{"mariadb own", maria.setOwnPassword(pluginNative, "pw'", "old", true), "SET PASSWORD = '" + h + "'"},
		{"mariadb own cleartext", maria.setOwnPassword(pluginEd25519, "pw'", "old", false), "SET PASSWORD = PASSWORD('pw''')"},
		{"mysql 8 own", my8.setOwnPassword("", "new", "o'ld", true), "ALTER USER USER() IDENTIFIED BY 'new' REPLACE 'o''ld'"},
		{"mysql 5.7 own", my57.setOwnPassword("", `n\`, "old", true), `ALTER USER USER() IDENTIFIED BY 'n\\'`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, tc.got, tc.want)
		}
	}
	if err := maria.checkPlugin("unix_socket", "`u`@`h`"); rotator.KindOf(err) != rotator.KindInvalid {
		t.Errorf("unix_socket accepted: %v", err)
	}
	if err := my8.checkPlugin(pluginEd25519, "`u`@`h`"); rotator.KindOf(err) != rotator.KindInvalid {
		t.Errorf("ed25519 accepted on MySQL: %v", err)
	}
}

func TestScrubber(t *testing.T) {
	pw := `s3cr'et\`
	sc := newScrubber(pw, "")
	for _, msg := range []string{
		"near '" + pw + "'",
		"near 's3cr''et\\\\'",
		"hash " + nativeHash(pw),
		"hash " + strings.ToLower(nativeHash(pw)[1:]),
		"ed " + ed25519Hash(pw),
	} {
		got := sc.clean(msg)
		if !strings.Contains(got, "[REDACTED]") || strings.Contains(got, "s3cr") || strings.Contains(strings.ToUpper(got), nativeHash(pw)[1:]) {
			t.Errorf("clean(%q) = %q", msg, got)
		}
	}
	// A syntax error's message, which quotes the statement, is dropped.
	kind, cause := sc.classify(&driver.MySQLError{Number: 1064, Message: "near 'IDENTIFIED BY 'x'' at line 1"})
	if kind != rotator.KindTarget || strings.Contains(cause.Error(), "IDENTIFIED") {
		t.Errorf("classify(1064) = %v, %v", kind, cause)
	}
	var se *ServerError
	if !errors.As(cause, &se) || se.Number != 1064 {
		t.Errorf("cause = %#v, want a *ServerError", cause)
	}
	for n, want := range map[uint16]rotator.Kind{1045: rotator.KindAuth, 1044: rotator.KindPermission, 1142: rotator.KindPermission,
		1227: rotator.KindPermission, 1040: rotator.KindUnreachable, 1819: rotator.KindInvalid, 1146: rotator.KindTarget} {
		if got, _ := sc.classify(&driver.MySQLError{Number: n}); got != want {
			t.Errorf("classify(%d) = %v, want %v", n, got, want)
		}
	}
}

// A captured MariaDB 10.11 SHOW GRANTS of `app`@`%`, and lines in the
// shape MySQL 8 prints.
var grantLines = []string{
	"GRANT `r1` TO `app`@`%`",
	"GRANT RELOAD ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*B5A84E3D0760ADA5677F3A8508B740E75859C0E0' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 10",
	"GRANT SELECT, INSERT ON `d1`.* TO `app`@`%` WITH GRANT OPTION",
	"GRANT SELECT (`a`), UPDATE (`a`, `b`) ON `d1`.`t` TO `app`@`%`",
	"GRANT PROXY ON ``@`%` TO `app`@`%`",
	"GRANT EXECUTE ON PROCEDURE `d1`.`p` TO `app`@`%`",
	"GRANT SELECT ON `x TO ``app``@``%`` y`.* TO `app`@`%`",
	"SET DEFAULT ROLE `r1` FOR `app`@`%`",
	"GRANT `r2`@`%`,`r3`@`localhost` TO `app`@`%` WITH ADMIN OPTION",
	"GRANT BACKUP_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `app`@`%` WITH GRANT OPTION",
	"GRANT USAGE ON `d2`.* TO `app`@`%` WITH GRANT OPTION",
}

func TestParseGrants(t *testing.T) {
	g, err := parseGrants(grantLines, "app", "%", true)
	if err != nil {
		t.Fatal(err)
	}
	wantPrivs := map[string]map[string]bool{
		"*.*":                      {"RELOAD": false, "BACKUP_ADMIN": true, "SYSTEM_VARIABLES_ADMIN": true},
		"`d1`.*":                   {"SELECT": true, "INSERT": true},
		"`d1`.`t`":                 {"SELECT (`a`)": false, "UPDATE (`a`)": false, "UPDATE (`b`)": false},
		"``@`%`":                   {"PROXY": false},
		"PROCEDURE `d1`.`p`":       {"EXECUTE": false},
		"`x TO ``app``@``%`` y`.*": {"SELECT": false},
		"`d2`.*":                   {"USAGE": true},
	}
	if len(g.privs) != len(wantPrivs) {
		t.Errorf("objects = %q, want %q", slices.Sorted(maps.Keys(g.privs)), slices.Sorted(maps.Keys(wantPrivs)))
	}
	for obj, want := range wantPrivs {
		if got := g.privs[obj]; !maps.Equal(got, want) {
			t.Errorf("privs[%s] = %v, want %v", obj, got, want)
		}
	}
	wantRoles := map[string]bool{"`r1`": false, "`r2`@`%`": true, "`r3`@`localhost`": true}
	if !maps.Equal(g.roles, wantRoles) {
		t.Errorf("roles = %v, want %v", g.roles, wantRoles)
	}
	if !slices.Equal(g.defaultRoles, []string{"`r1`"}) {
		t.Errorf("default roles = %q", g.defaultRoles)
	}

	// The same grants parse for another grantee once it is named.
	if _, err := parseGrants(grantLines[:1], "app_clone", "%", true); err == nil {
		t.Errorf("a line for `app`@`%%` parsed as `app_clone`@`%%`")
	}
	if _, err := parseGrants([]string{"GRANT SELECT ON *.* TO `app`@`localhost`"}, "app", "%", true); err == nil {
		t.Errorf("a line for another host parsed")
	}
}

func TestParseGrantsErrors(t *testing.T) {
	for _, line := range []string{
		"REVOKE INSERT ON `mysql`.* FROM `app`@`%`",
		"GRANT SELECT ON `db`.* `app`@`%`",
		"GRANT SELECT ON `db`.* TO app",
		"GRANT SELECT ON `db`.* TO `app`@`%",
		"GRANT SELECT (`a` ON `db`.`t` TO `app`@`%`",
		"GRANT , ON `db`.* TO `app`@`%`",
		"GRANT SELECT ON TO `app`@`%`",
		"SHOW ME THE MONEY",
		"",
	} {
		_, err := parseGrants([]string{line}, "app", "%", true)
		if err == nil {
			t.Errorf("%q parsed", line)
			continue
		}
		if strings.Contains(err.Error(), "IDENTIFIED") {
			t.Errorf("%q: error quotes the tail: %v", line, err)
		}
	}
	// An error never quotes what follows the grantee, where MariaDB puts
	// the password hash.
	_, err := parseGrants([]string{"GRANT SELECT ON `db`.* TO `other`@`%` IDENTIFIED BY PASSWORD '*SECRETHASH'"}, "app", "%", true)
	if err == nil || strings.Contains(err.Error(), "SECRETHASH") {
		t.Errorf("err = %v", err)
	}
}

func TestPlanSync(t *testing.T) {
	to := "`app_clone`@`%`"
	parse := func(lines ...string) grants {
		t.Helper()
		g, err := parseGrants(lines, "app", "%", true)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	for _, tc := range []struct {
		name       string
		want, have grants
		mariadb    bool
		stmts      []string
	}{
		{"equal", parse(grantLines[:8]...), parse(grantLines[:8]...), true, nil},
		{"from nothing", parse(grantLines[:8]...), parse(), true, []string{
			"GRANT RELOAD ON *.* TO " + to,
			"GRANT EXECUTE ON PROCEDURE `d1`.`p` TO " + to,
			"GRANT PROXY ON ``@`%` TO " + to,
			"GRANT INSERT, SELECT ON `d1`.* TO " + to + " WITH GRANT OPTION",
			"GRANT SELECT (`a`), UPDATE (`a`, `b`) ON `d1`.`t` TO " + to,
			"GRANT SELECT ON `x TO ``app``@``%`` y`.* TO " + to,
			"GRANT `r1` TO " + to,
			"SET DEFAULT ROLE `r1` FOR " + to,
		}},
		{"to nothing", parse(), parse(grantLines[:8]...), false, []string{
			"REVOKE RELOAD ON *.* FROM " + to,
			"REVOKE EXECUTE ON PROCEDURE `d1`.`p` FROM " + to,
			"REVOKE PROXY ON ``@`%` FROM " + to,
			"REVOKE INSERT, SELECT, GRANT OPTION ON `d1`.* FROM " + to,
			"REVOKE SELECT (`a`), UPDATE (`a`, `b`) ON `d1`.`t` FROM " + to,
			"REVOKE SELECT ON `x TO ``app``@``%`` y`.* FROM " + to,
			"REVOKE `r1` FROM " + to,
			"SET DEFAULT ROLE NONE TO " + to,
		}},
		{"added privilege is granted alone",
			parse("GRANT SELECT, INSERT ON `d`.* TO `app`@`%`"), parse("GRANT SELECT ON `d`.* TO `app`@`%`"), true,
			[]string{"GRANT INSERT ON `d`.* TO " + to}},
		{"removed privilege: revoke, then grant the rest",
			parse("GRANT SELECT ON `d`.* TO `app`@`%`"), parse("GRANT SELECT, INSERT ON `d`.* TO `app`@`%`"), true,
			[]string{"REVOKE INSERT, SELECT ON `d`.* FROM " + to, "GRANT SELECT ON `d`.* TO " + to}},
		{"ALL PRIVILEGES replaces a list",
			parse("GRANT ALL PRIVILEGES ON `d`.* TO `app`@`%`"), parse("GRANT SELECT ON `d`.* TO `app`@`%`"), true,
			[]string{"REVOKE SELECT ON `d`.* FROM " + to, "GRANT ALL PRIVILEGES ON `d`.* TO " + to}},
		{"grant option removed",
			parse("GRANT SELECT ON `d`.* TO `app`@`%`"), parse("GRANT SELECT ON `d`.* TO `app`@`%` WITH GRANT OPTION"), true,
			[]string{"REVOKE SELECT, GRANT OPTION ON `d`.* FROM " + to, "GRANT SELECT ON `d`.* TO " + to}},
		{"admin option added",
			parse("GRANT `r` TO `app`@`%` WITH ADMIN OPTION"), parse("GRANT `r` TO `app`@`%`"), true,
			[]string{"REVOKE `r` FROM " + to, "GRANT `r` TO " + to + " WITH ADMIN OPTION"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planSync(tc.want, tc.have, to, tc.mariadb)
			if !slices.Equal(got, tc.stmts) {
				t.Errorf("planSync:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.stmts, "\n     "))
			}
		})
	}
}

// FuzzParseGrants: no input panics the parser, and parsed grants need no
// statement to sync with themselves; every planned statement lexes.
func FuzzParseGrants(f *testing.F) {
	for _, l := range grantLines {
		f.Add(l)
	}
	f.Add("GRANT SELECT ON `a`.`b` TO 'app'@'%' WITH GRANT OPTION")
	f.Fuzz(func(t *testing.T, line string) {
		g, err := parseGrants([]string{line}, "app", "%", true)
		if err != nil {
			return
		}
		if stmts := planSync(g, g, "`x`@`%`", true); len(stmts) != 0 {
			t.Fatalf("self-sync of %q plans %q", line, stmts)
		}
		for _, s := range planSync(g, newGrants(), "`x`@`%`", true) {
			if _, err := lex(s, true); err != nil {
				t.Fatalf("planned %q does not lex: %v", s, err)
			}
		}
	})
}

func TestParsePlugin(t *testing.T) {
	for _, tc := range []struct{ stmt, want string }{
		{"CREATE USER `u`@`%` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC07F1AEAD1477967B16F28227'", pluginNative},
		{"CREATE USER `u`@`%` IDENTIFIED VIA ed25519 USING '0cBZTrKx5x9mpSNQ5xpt6j3rJUcqumPHAV9MZCfsJ9g' REQUIRE SSL", pluginEd25519},
		{"CREATE USER `u`@`%`", pluginNative},
		{"CREATE USER `u`@`%` IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$x' REQUIRE NONE", pluginCaching},
		{"CREATE USER `u`@`%` IDENTIFIED VIA unix_socket", "unix_socket"},
	} {
		got, err := parsePlugin(tc.stmt, true)
		if err != nil || got != tc.want {
			t.Errorf("parsePlugin(%q) = %q, %v; want %q", tc.stmt, got, err, tc.want)
		}
	}
	if _, err := parsePlugin("CREATE USER `u`@`%` IDENTIFIED VIA mysql_native_password USING '*AB' OR unix_socket", true); rotator.KindOf(err) != rotator.KindInvalid {
		t.Errorf("several methods: err = %v, want KindInvalid", err)
	}
}
