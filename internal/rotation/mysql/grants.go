package mysql

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// This file reads SHOW GRANTS into a structure and plans the GRANT and
// REVOKE statements that make one account's privileges equal another's.
// Nothing here rewrites statement text: each line is split into tokens
// (quoted identifiers and strings stay whole, so a table named "TO `x`"
// cannot be mistaken for the grantee), checked to name the expected
// grantee, and the new statements are rendered from the parts.

type tokenKind int

const (
	tokWord   tokenKind = iota + 1 // unquoted word or number, upper-cased in text
	tokIdent                       // `quoted identifier`, text is the name
	tokString                      // 'string' or "string", text is the value
	tokPunct                       // one other byte
)

type token struct {
	kind tokenKind
	text string // upper-cased word, decoded identifier or string, or the byte
	raw  string // as it appeared
}

// is reports whether t is the unquoted word w (upper case).
func (t token) is(w string) bool { return t.kind == tokWord && t.text == w }

// isName reports whether t can be a user, host or role name.
func (t token) isName() bool { return t.kind == tokIdent || t.kind == tokString }

// render writes t as it must appear in a statement rotor builds.
func (t token) render() string {
	switch t.kind {
	case tokIdent:
		return quoteIdent(t.text)
	case tokWord:
		return t.text
	}
	return t.raw
}

// lex splits a statement into tokens. backslashEscapes says whether a
// backslash escapes the next byte inside strings (sql_mode without
// NO_BACKSLASH_ESCAPES).
func lex(s string, backslashEscapes bool) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '`' || c == '\'' || c == '"':
			val, n, err := lexQuoted(s[i:], c, backslashEscapes && c != '`')
			if err != nil {
				return nil, err
			}
			kind := tokString
			if c == '`' {
				kind = tokIdent
			}
			toks = append(toks, token{kind: kind, text: val, raw: s[i : i+n]})
			i += n
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: strings.ToUpper(s[i:j]), raw: s[i:j]})
			i = j
		default:
			toks = append(toks, token{kind: tokPunct, text: s[i : i+1], raw: s[i : i+1]})
			i++
		}
	}
	return toks, nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// lexQuoted reads the quoted token at the start of s, which starts with
// quote, and returns its value and length. A doubled quote stands for one.
func lexQuoted(s string, quote byte, backslash bool) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case backslash && c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case '0':
				b.WriteByte(0)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(0x1a)
			default:
				b.WriteByte(e)
			}
		case c == quote && i+1 < len(s) && s[i+1] == quote:
			b.WriteByte(quote)
			i++
		case c == quote:
			return b.String(), i + 1, nil
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated quoted name or string")
}

// grants are an account's privileges as SHOW GRANTS lists them.
type grants struct {
	// privs maps an object (`db`.*, `db`.`t`, PROCEDURE `db`.`p`, *.*,
	// ``@`%` for PROXY) to its privileges, each with whether it carries
	// GRANT OPTION. A column privilege is "SELECT (`c`)".
	privs map[string]map[string]bool
	// roles maps a granted role to whether it carries ADMIN OPTION.
	roles map[string]bool
	// defaultRoles are the account's default roles (MariaDB: at most one;
	// filled from SET DEFAULT ROLE lines, or separately on MySQL).
	defaultRoles []string
}

func newGrants() grants {
	return grants{privs: map[string]map[string]bool{}, roles: map[string]bool{}}
}

// grantError says why a SHOW GRANTS line could not be used. It quotes only
// the part of the line before the grantee, which holds no secret.
type grantError struct {
	line   int
	prefix string
	reason string
}

func (e *grantError) Error() string {
	if e.prefix == "" {
		return fmt.Sprintf("SHOW GRANTS line %d: %s", e.line, e.reason)
	}
	return fmt.Sprintf("SHOW GRANTS line %d (%s …): %s", e.line, e.prefix, e.reason)
}

// parseGrants reads the lines of SHOW GRANTS FOR user@host. Every line must
// name exactly that grantee; anything this package does not understand is
// an error rather than something silently left out.
func parseGrants(lines []string, user, host string, backslashEscapes bool) (grants, error) {
	g := newGrants()
	for n, line := range lines {
		if err := g.addLine(line, user, host, backslashEscapes); err != nil {
			var ge *grantError
			if errors.As(err, &ge) {
				ge.line = n + 1
			}
			return grants{}, err
		}
	}
	for _, items := range g.privs {
		if len(items) == 0 {
			return grants{}, errors.New("SHOW GRANTS: empty privilege list")
		}
	}
	return g, nil
}

func (g *grants) addLine(line, user, host string, backslashEscapes bool) error {
	toks, err := lex(line, backslashEscapes)
	if err != nil {
		return &grantError{reason: err.Error()}
	}
	if len(toks) == 0 {
		return &grantError{reason: "empty line"}
	}
	switch {
	case toks[0].is("GRANT"):
		return g.addGrant(toks, user, host)
	case len(toks) > 3 && toks[0].is("SET") && toks[1].is("DEFAULT") && toks[2].is("ROLE"):
		return g.addDefaultRole(toks, user, host)
	case toks[0].is("REVOKE"):
		return &grantError{prefix: renderTokens(toks[:min(len(toks), 8)]), reason: "partial revokes are not supported; rotate this user with single-user rotation or grant through a role"}
	}
	return &grantError{prefix: renderTokens(toks[:1]), reason: "not a GRANT statement"}
}

// addGrant reads GRANT privs ON object TO grantee [tail] or
// GRANT roles TO grantee [tail].
func (g *grants) addGrant(toks []token, user, host string) error {
	on, to := -1, -1
	depth := 0
	for i, t := range toks {
		switch {
		case t.kind == tokPunct && t.text == "(":
			depth++
		case t.kind == tokPunct && t.text == ")":
			depth--
		case depth == 0 && on < 0 && to < 0 && t.is("ON"):
			on = i
		case depth == 0 && to < 0 && t.is("TO"):
			to = i
		}
	}
	if to < 0 {
		return &grantError{prefix: renderTokens(toks[:min(len(toks), 4)]), reason: "no TO clause"}
	}
	prefix := renderTokens(toks[:to])
	rest, err := checkGrantee(toks[to+1:], user, host)
	if err != nil {
		return &grantError{prefix: prefix, reason: err.Error()}
	}
	grantOption, adminOption := false, false
	for i := 0; i+1 < len(rest); i++ {
		switch {
		case rest[i].is("GRANT") && rest[i+1].is("OPTION"):
			grantOption = true
		case rest[i].is("ADMIN") && rest[i+1].is("OPTION"):
			adminOption = true
		}
	}
	if on < 0 {
		// Role grants: GRANT `r1`, `r2`@`%` TO …
		roles, err := splitList(toks[1:to])
		if err != nil {
			return &grantError{prefix: prefix, reason: err.Error()}
		}
		for _, r := range roles {
			if !isRoleName(r) {
				return &grantError{prefix: prefix, reason: "unrecognised role grant"}
			}
			g.roles[renderTokens(r)] = adminOption
		}
		return nil
	}
	if on+1 >= to {
		return &grantError{prefix: prefix, reason: "no object after ON"}
	}
	object := renderTokens(toks[on+1 : to])
	items, err := splitList(toks[1:on])
	if err != nil {
		return &grantError{prefix: prefix, reason: err.Error()}
	}
	privs := g.privs[object]
	if privs == nil {
		privs = map[string]bool{}
	}
	for _, it := range items {
		names, err := privilegeItems(it)
		if err != nil {
			return &grantError{prefix: prefix, reason: err.Error()}
		}
		for _, name := range names {
			if name == "USAGE" && !grantOption {
				continue // every account has it
			}
			privs[name] = grantOption
		}
	}
	if len(privs) > 0 {
		g.privs[object] = privs
	}
	return nil
}

// addDefaultRole reads MariaDB's SET DEFAULT ROLE role FOR grantee.
func (g *grants) addDefaultRole(toks []token, user, host string) error {
	forAt := -1
	for i, t := range toks {
		if t.is("FOR") {
			forAt = i
			break
		}
	}
	if forAt < 4 {
		return &grantError{prefix: renderTokens(toks[:3]), reason: "no FOR clause"}
	}
	prefix := renderTokens(toks[:forAt])
	rest, err := checkGrantee(toks[forAt+1:], user, host)
	if err != nil {
		return &grantError{prefix: prefix, reason: err.Error()}
	}
	if len(rest) != 0 {
		return &grantError{prefix: prefix, reason: "unexpected text after the grantee"}
	}
	role := toks[3:forAt]
	if len(role) == 1 && role[0].is("NONE") {
		return nil
	}
	if !isRoleName(role) {
		return &grantError{prefix: prefix, reason: "unrecognised default role"}
	}
	g.defaultRoles = append(g.defaultRoles, renderTokens(role))
	return nil
}

// checkGrantee checks that toks start with user@host and returns what
// follows. User names compare exactly, host names without case, as the
// server compares them.
func checkGrantee(toks []token, user, host string) ([]token, error) {
	if len(toks) < 3 || !toks[0].isName() || toks[1].kind != tokPunct || toks[1].text != "@" || !toks[2].isName() {
		return nil, errors.New("grantee is not 'user'@'host'")
	}
	if toks[0].text != user || !strings.EqualFold(toks[2].text, host) {
		return nil, errors.New("grantee is not the expected account")
	}
	return toks[3:], nil
}

// isRoleName reports whether toks are `role` or `role`@`host`.
func isRoleName(toks []token) bool {
	switch len(toks) {
	case 1:
		return toks[0].isName()
	case 3:
		return toks[0].isName() && toks[1].kind == tokPunct && toks[1].text == "@" && toks[2].isName()
	}
	return false
}

// splitList splits toks at commas outside parentheses.
func splitList(toks []token) ([][]token, error) {
	var out [][]token
	depth, start := 0, 0
	for i, t := range toks {
		if t.kind != tokPunct {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
			if depth < 0 {
				return nil, errors.New("unbalanced parentheses")
			}
		case ",":
			if depth == 0 {
				out = append(out, toks[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced parentheses")
	}
	out = append(out, toks[start:])
	for _, item := range out {
		if len(item) == 0 {
			return nil, errors.New("empty list item")
		}
	}
	return out, nil
}

// privilegeItems reads one privilege — words, then an optional column list
// — into its items: "SELECT", or one "SELECT (`c`)" per column.
func privilegeItems(toks []token) ([]string, error) {
	i := 0
	var words []string
	for i < len(toks) && toks[i].kind == tokWord {
		words = append(words, toks[i].text)
		i++
	}
	if len(words) == 0 {
		return nil, errors.New("unrecognised privilege")
	}
	name := strings.Join(words, " ")
	if i == len(toks) {
		return []string{name}, nil
	}
	if toks[i].kind != tokPunct || toks[i].text != "(" || toks[len(toks)-1].kind != tokPunct || toks[len(toks)-1].text != ")" {
		return nil, errors.New("unrecognised privilege")
	}
	cols, err := splitList(toks[i+1 : len(toks)-1])
	if err != nil {
		return nil, err
	}
	var items []string
	for _, c := range cols {
		if len(c) != 1 || c[0].kind != tokIdent && c[0].kind != tokWord {
			return nil, errors.New("unrecognised column list")
		}
		items = append(items, name+" ("+quoteIdent(c[0].text)+")")
	}
	return items, nil
}

// renderTokens joins tokens as a statement: words and names separated by
// one space, punctuation attached.
func renderTokens(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			prev := toks[i-1]
			if prev.kind != tokPunct && t.kind != tokPunct || prev.kind == tokPunct && prev.text == "," {
				b.WriteByte(' ')
			}
		}
		b.WriteString(t.render())
	}
	return b.String()
}

// planSync returns the statements that give account to (a rendered
// `user`@`host`) exactly the grants want, given that it has have. mariadb
// selects the dialect of SET DEFAULT ROLE. Objects are handled one at a
// time: when to only lacks privileges they are granted; otherwise what it
// has on that object is revoked and want's privileges granted, because a
// privilege list such as ALL PRIVILEGES cannot be diffed item by item.
func planSync(want, have grants, to string, mariadb bool) []string {
	var stmts []string
	for _, obj := range unionKeys(want.privs, have.privs) {
		w, h := want.privs[obj], have.privs[obj]
		if mapsEqual(w, h) {
			continue
		}
		grant := w
		if !subset(h, w) {
			stmts = append(stmts, revokeStmt(obj, h, to))
		} else {
			grant = map[string]bool{}
			for item, opt := range w {
				if _, ok := h[item]; !ok {
					grant[item] = opt
				}
			}
		}
		stmts = append(stmts, grantStmts(obj, grant, to)...)
	}
	for _, role := range unionKeys(want.roles, have.roles) {
		wOpt, inW := want.roles[role]
		hOpt, inH := have.roles[role]
		switch {
		case inW && inH && wOpt == hOpt:
		case inW:
			if inH {
				stmts = append(stmts, "REVOKE "+role+" FROM "+to)
			}
			s := "GRANT " + role + " TO " + to
			if wOpt {
				s += " WITH ADMIN OPTION"
			}
			stmts = append(stmts, s)
		default:
			stmts = append(stmts, "REVOKE "+role+" FROM "+to)
		}
	}
	wd, hd := slices.Sorted(slices.Values(want.defaultRoles)), slices.Sorted(slices.Values(have.defaultRoles))
	if !slices.Equal(wd, hd) {
		roles := "NONE"
		if len(wd) > 0 {
			roles = strings.Join(wd, ", ")
		}
		if mariadb {
			stmts = append(stmts, "SET DEFAULT ROLE "+roles+" FOR "+to)
		} else {
			stmts = append(stmts, "SET DEFAULT ROLE "+roles+" TO "+to)
		}
	}
	return stmts
}

// revokeStmt revokes everything in items on obj from to.
func revokeStmt(obj string, items map[string]bool, to string) string {
	if _, ok := items["PROXY"]; ok {
		return "REVOKE PROXY ON " + obj + " FROM " + to
	}
	names := map[string]bool{}
	grantOption := false
	for item, opt := range items {
		grantOption = grantOption || opt
		if item != "USAGE" {
			names[item] = false
		}
	}
	list := privilegeList(names)
	if grantOption {
		if list != "" {
			list += ", "
		}
		list += "GRANT OPTION"
	}
	return "REVOKE " + list + " ON " + obj + " FROM " + to
}

// grantStmts grants items on obj to to: one statement for the items
// without GRANT OPTION and one for those with it.
func grantStmts(obj string, items map[string]bool, to string) []string {
	var stmts []string
	for _, opt := range []bool{false, true} {
		group := map[string]bool{}
		for item, o := range items {
			if o == opt {
				group[item] = false
			}
		}
		if len(group) == 0 {
			continue
		}
		s := "GRANT " + privilegeList(group) + " ON " + obj + " TO " + to
		if opt {
			s += " WITH GRANT OPTION"
		}
		stmts = append(stmts, s)
	}
	return stmts
}

// privilegeList renders items as a privilege list, merging the columns of
// one privilege: "SELECT (`a`, `b`), INSERT".
func privilegeList(items map[string]bool) string {
	cols := map[string][]string{}
	var names []string
	for _, item := range slices.Sorted(mapKeys(items)) {
		name, col, ok := strings.Cut(item, " (")
		if _, seen := cols[name]; !seen {
			names = append(names, name)
			cols[name] = nil
		}
		if ok {
			cols[name] = append(cols[name], strings.TrimSuffix(col, ")"))
		}
	}
	parts := make([]string, 0, len(names))
	for _, name := range names {
		if c := cols[name]; len(c) > 0 {
			parts = append(parts, name+" ("+strings.Join(c, ", ")+")")
		} else {
			parts = append(parts, name)
		}
	}
	return strings.Join(parts, ", ")
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// subset reports whether every item of a is in b with the same option.
func subset(a, b map[string]bool) bool {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
