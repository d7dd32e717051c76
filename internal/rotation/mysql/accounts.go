package mysql

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// account is one row of mysql.user: a user at one host.
type account struct {
	host       string
	plugin     string
	authString string // the stored password hash: never logged, never in an error

	sslType, sslCipher, x509Issuer, x509Subject string
	maxQuestions, maxUpdates, maxConnections    int64
	maxUserConnections                          int64
	maxStatementTime                            string // MariaDB only, as the server prints it
}

// accounts returns the host entries of each of users, sorted by host, in
// one query. Roles are left out.
func accounts(ctx context.Context, s *session, users ...string) (map[string][]account, error) {
	in := strings.TrimSuffix(strings.Repeat("?, ", len(users)), ", ")
	q := `SELECT User, Host, plugin, authentication_string, '', ssl_type, ssl_cipher, x509_issuer, x509_subject,
	max_questions, max_updates, max_connections, max_user_connections, '0'
	FROM mysql.user WHERE User IN (` + in + `)`
	if s.srv.mariadb {
		q = `SELECT User, Host, plugin, authentication_string, Password, ssl_type, ssl_cipher, x509_issuer, x509_subject,
	max_questions, max_updates, max_connections, max_user_connections, CAST(max_statement_time AS CHAR)
	FROM mysql.user WHERE User IN (` + in + `) AND is_role <> 'Y'`
	}
	args := make([]any, len(users))
	for i, u := range users {
		args[i] = u
	}
	rows, err := s.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]account{}
	for rows.Next() {
		var a account
		var user, password string
		var cipher, issuer, subject []byte
		if err := rows.Scan(&user, &a.host, &a.plugin, &a.authString, &password, &a.sslType, &cipher, &issuer, &subject,
			&a.maxQuestions, &a.maxUpdates, &a.maxConnections, &a.maxUserConnections, &a.maxStatementTime); err != nil {
			return nil, err
		}
		a.sslCipher, a.x509Issuer, a.x509Subject = string(cipher), string(issuer), string(subject)
		if a.plugin == "" {
			// MariaDB before 10.4 leaves plugin empty for native
			// passwords, which it keeps in the Password column.
			a.plugin = pluginNative
		}
		if a.authString == "" {
			a.authString = password
		}
		out[user] = append(out[user], a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, list := range out {
		sort.Slice(list, func(i, j int) bool { return list[i].host < list[j].host })
	}
	return out, nil
}

func findHost(list []account, host string) (account, bool) {
	for _, a := range list {
		if strings.EqualFold(a.host, host) {
			return a, true
		}
	}
	return account{}, false
}

// sameOptions reports whether a and b have the same TLS requirement and
// resource limits.
func (a account) sameOptions(b account) bool {
	return a.requireClause(false) == b.requireClause(false) && a.limitsClause(true) == b.limitsClause(true)
}

// requireClause renders the account's TLS requirement for ALTER USER.
// Strings are quoted for a session with NO_BACKSLASH_ESCAPES as given.
func (a account) requireClause(noBackslashEscapes bool) string {
	switch strings.ToUpper(a.sslType) {
	case "", "NONE":
		return "REQUIRE NONE"
	case "ANY":
		return "REQUIRE SSL"
	case "X509":
		return "REQUIRE X509"
	}
	// SPECIFIED
	var parts []string
	for _, p := range []struct{ kw, v string }{{"CIPHER", a.sslCipher}, {"ISSUER", a.x509Issuer}, {"SUBJECT", a.x509Subject}} {
		if p.v != "" {
			parts = append(parts, p.kw+" "+quoteString(p.v, noBackslashEscapes))
		}
	}
	if len(parts) == 0 {
		return "REQUIRE SSL" // SPECIFIED with nothing specified: TLS, at least
	}
	return "REQUIRE " + strings.Join(parts, " AND ")
}

var decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// limitsClause renders the account's resource limits for ALTER USER.
func (a account) limitsClause(mariadb bool) string {
	s := "WITH MAX_QUERIES_PER_HOUR " + strconv.FormatInt(a.maxQuestions, 10) +
		" MAX_UPDATES_PER_HOUR " + strconv.FormatInt(a.maxUpdates, 10) +
		" MAX_CONNECTIONS_PER_HOUR " + strconv.FormatInt(a.maxConnections, 10) +
		" MAX_USER_CONNECTIONS " + strconv.FormatInt(a.maxUserConnections, 10)
	if mariadb {
		t := a.maxStatementTime
		if !decimal.MatchString(t) {
			t = "0"
		}
		s += " MAX_STATEMENT_TIME " + t
	}
	return s
}

// showGrants reads and parses SHOW GRANTS FOR user@host, and on MySQL 8
// the account's default roles, which SHOW GRANTS does not list.
func showGrants(ctx context.Context, s *session, user, host string) (grants, error) {
	rows, err := s.conn.QueryContext(ctx, "SHOW GRANTS FOR "+accountName(user, host))
	if err != nil {
		return grants{}, err
	}
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return grants{}, err
		}
		lines = append(lines, line)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return grants{}, err
	}
	g, err := parseGrants(lines, user, host, !s.srv.noBackslashEscapes)
	if err != nil {
		return grants{}, rotator.Errorf(rotator.KindTarget, err, "cannot read the privileges of %s", accountName(user, host))
	}
	if !s.srv.mariadb && s.srv.atLeast(8, 0, 0) {
		rows, err := s.conn.QueryContext(ctx,
			"SELECT DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST FROM mysql.default_roles WHERE USER = ? AND HOST = ?", user, host)
		if err != nil {
			return grants{}, err
		}
		defer rows.Close()
		for rows.Next() {
			var ru, rh string
			if err := rows.Scan(&ru, &rh); err != nil {
				return grants{}, err
			}
			g.defaultRoles = append(g.defaultRoles, accountName(ru, rh))
		}
		if err := rows.Err(); err != nil {
			return grants{}, err
		}
	}
	return g, nil
}

// ownPlugin returns the authentication plugin of the session's own account
// on MariaDB, from SHOW CREATE USER CURRENT_USER(), which needs no
// privilege.
func ownPlugin(ctx context.Context, s *session) (string, error) {
	var stmt string
	if err := s.conn.QueryRowContext(ctx, "SHOW CREATE USER CURRENT_USER()").Scan(&stmt); err != nil {
		if kindOfNumber(serverErrorNumber(err)) == rotator.KindPermission {
			// Older servers may want a privilege; before 10.4 SET
			// PASSWORD only knows native passwords anyway.
			return pluginNative, nil
		}
		return "", err
	}
	return parsePlugin(stmt, !s.srv.noBackslashEscapes)
}

// parsePlugin reads the authentication plugin from a CREATE USER
// statement as SHOW CREATE USER prints it.
func parsePlugin(stmt string, backslashEscapes bool) (string, error) {
	toks, err := lex(stmt, backslashEscapes)
	if err != nil {
		return "", rotator.Errorf(rotator.KindTarget, err, "cannot read SHOW CREATE USER")
	}
	plugin := ""
	for i, t := range toks {
		switch {
		case t.is("IDENTIFIED") && i+1 < len(toks) && toks[i+1].is("BY"):
			plugin = pluginNative
		case t.is("IDENTIFIED") && i+2 < len(toks) && (toks[i+1].is("VIA") || toks[i+1].is("WITH")):
			plugin = strings.ToLower(toks[i+2].text)
		case t.is("OR") && plugin != "":
			return "", rotator.Errorf(rotator.KindInvalid, nil, "the account has several authentication methods (IDENTIFIED VIA … OR …); rotor rotates accounts with one password")
		}
	}
	if plugin == "" {
		plugin = pluginNative // no password at all
	}
	return plugin, nil
}
