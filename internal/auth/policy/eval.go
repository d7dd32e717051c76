package policy

import (
	"cmp"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Context is a request's condition keys and their values. Keys are stored
// lower-cased, so that lookups are case-insensitive as in IAM: fill a
// Context with Set, not by indexing it. A key without an entry, or with no
// values, is absent.
type Context map[string][]string

// Set gives key (in any case) the values, replacing what it had. c must not
// be nil.
func (c Context) Set(key string, values ...string) {
	c[strings.ToLower(key)] = values
}

// Get returns the values of key, compared case-insensitively, and whether
// the key has an entry.
func (c Context) Get(key string) ([]string, bool) {
	if len(c) == 0 {
		return nil, false
	}
	upper := false
	for i := 0; i < len(key); i++ {
		b := key[i]
		if b >= utf8.RuneSelf {
			v, ok := c[strings.ToLower(key)]
			return v, ok
		}
		upper = upper || 'A' <= b && b <= 'Z'
	}
	if !upper {
		v, ok := c[key]
		return v, ok
	}
	// Lower-case into a stack buffer: looking a map up by string(bytes)
	// does not allocate, where strings.ToLower would.
	var buf [128]byte
	lower := buf[:0]
	for i := 0; i < len(key); i++ {
		b := key[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		lower = append(lower, b)
	}
	v, ok := c[string(lower)]
	return v, ok
}

// Request is one authorization question: may Principal do Action on
// Resource, in Context?
type Request struct {
	// Action is service:Action, such as "secretsmanager:GetSecretValue".
	Action string
	// Resource is an ARN, or "*" for an action on no particular resource,
	// such as ListSecrets.
	Resource string
	// Principal is the caller's ARN: arn:aws:iam::ACCOUNT:user/NAME, or
	// arn:aws:iam::ACCOUNT:root for the account itself.
	Principal string
	// Context holds the condition keys, such as aws:SourceIp,
	// aws:CurrentTime, aws:username and secretsmanager:ResourceTag/env. It
	// also supplies the values of policy variables. It may be nil.
	Context Context
}

// Decision is the outcome of evaluating one policy.
type Decision int

// The decisions.
const (
	// NotApplicable: no statement applies to the request, which is an
	// implicit deny unless another policy allows it.
	NotApplicable Decision = iota
	// DecisionAllow: an Allow statement applies and no Deny statement does.
	DecisionAllow
	// DecisionDeny: a Deny statement applies.
	DecisionDeny
)

// Match is the outcome of evaluating one policy: the decision and the
// statement that decided it, nil for NotApplicable.
type Match struct {
	Decision  Decision
	Statement *Statement
}

// Evaluate decides the request by this policy alone. A statement applies
// when its action, principal (if it has Principal or NotPrincipal),
// resource and conditions all match; a Deny statement that applies wins over
// any Allow statement. The package documentation describes the matching.
func (p *Policy) Evaluate(r *Request) Match {
	vars := p.Version == Version2012
	var allow *Statement
	for i := range p.Statements {
		s := &p.Statements[i]
		if s.Effect == Allow && allow != nil {
			continue // only a Deny can change the outcome now
		}
		if !s.applies(r, vars) {
			continue
		}
		if s.Effect == Deny {
			return Match{Decision: DecisionDeny, Statement: s}
		}
		allow = s
	}
	if allow != nil {
		return Match{Decision: DecisionAllow, Statement: allow}
	}
	return Match{}
}

// Result is the final decision of Authorize.
type Result struct {
	Allowed bool
	// Reason completes AWS's AccessDenied message ("User: ARN is not
	// authorized to perform: ACTION on resource: ARN " + Reason) when
	// Allowed is false; it is "" otherwise.
	Reason string
	// Deciding is the statement that decided: the Deny that denied, or an
	// Allow that allowed. It is nil for an implicit deny.
	Deciding *Statement
}

// The reasons of a Result; the last is completed with the action.
const (
	reasonIdentityDeny = "with an explicit deny in an identity-based policy"
	reasonResourceDeny = "with an explicit deny in a resource-based policy"
	reasonNoAllow      = "because no identity-based policy allows the "
)

// Authorize decides a request by the caller's identity policies and the
// resource's policy (nil when it has none) as IAM does within one account:
// a Deny in any of them wins; otherwise an Allow in any identity policy or
// in the resource policy allows; otherwise the request is implicitly
// denied. Nil identity policies are skipped.
func Authorize(r *Request, identity []*Policy, resource *Policy) Result {
	var allow *Statement
	for _, p := range identity {
		if p == nil {
			continue
		}
		switch m := p.Evaluate(r); m.Decision {
		case DecisionDeny:
			return Result{Reason: reasonIdentityDeny, Deciding: m.Statement}
		case DecisionAllow:
			if allow == nil {
				allow = m.Statement
			}
		}
	}
	if resource != nil {
		switch m := resource.Evaluate(r); m.Decision {
		case DecisionDeny:
			return Result{Reason: reasonResourceDeny, Deciding: m.Statement}
		case DecisionAllow:
			if allow == nil {
				allow = m.Statement
			}
		}
	}
	if allow != nil {
		return Result{Allowed: true, Deciding: allow}
	}
	return Result{Reason: reasonNoAllow + r.Action + " action"}
}

// applies reports whether the statement matches the request, whatever its
// effect. vars is whether policy variables are substituted.
func (s *Statement) applies(r *Request, vars bool) bool {
	if !s.Action.matchAction(r.Action) {
		return false
	}
	if s.Principal != nil && !s.Principal.matches(r.Principal) {
		return false
	}
	if !s.Resource.matchResource(r, vars) {
		return false
	}
	for i := range s.Conditions {
		if !s.Conditions[i].passes(r.Context, vars) {
			return false
		}
	}
	return true
}

func (ps *Patterns) matchAction(action string) bool {
	found := false
	for _, a := range ps.Values {
		if wildcardMatch(a, action, true, false) {
			found = true
			break
		}
	}
	return found != ps.Not
}

func (ps *Patterns) matchResource(r *Request, vars bool) bool {
	if len(ps.Values) == 0 {
		return true // no Resource element: every resource
	}
	found := false
	for _, v := range ps.Values {
		if r.Resource == "*" {
			if v == "*" {
				found = true
				break
			}
			continue
		}
		pattern, escaped, ok := policyValue(v, r.Context, vars, true)
		if ok && wildcardMatch(pattern, r.Resource, false, escaped) {
			found = true
			break
		}
	}
	return found != ps.Not
}

// matches reports whether the Principal or NotPrincipal applies to the
// caller. IAM matches principals exactly, and naming an account (its id or
// root ARN) names only the account's root principal: in the account's own
// resource policies that defers to the identity policies of its users. A
// Rotor caller is never a service, federated or canonical-user principal.
func (p *Principal) matches(caller string) bool {
	return (p.Any || p.names(caller)) != p.Not
}

func (p *Principal) names(caller string) bool {
	for _, a := range p.AWS {
		switch {
		case a == "*":
			return true
		case strings.HasPrefix(a, "arn:"):
			if a == caller {
				return true
			}
		default: // an account id
			if account, ok := rootAccount(caller); ok && account == a {
				return true
			}
		}
	}
	return false
}

// rootAccount returns the account of a root principal's ARN,
// arn:PARTITION:iam::ACCOUNT:root.
func rootAccount(arn string) (string, bool) {
	parts, ok := splitARN(arn)
	if !ok || parts[0] != "arn" || parts[2] != "iam" || parts[3] != "" || parts[5] != "root" {
		return "", false
	}
	return parts[4], true
}

// splitARN splits an ARN into its six parts; the last keeps its colons. ok
// is false when s has fewer than five colons.
func splitARN(s string) (parts [6]string, ok bool) {
	for i := range 5 {
		var found bool
		if parts[i], s, found = strings.Cut(s, ":"); !found {
			return parts, false
		}
	}
	parts[5] = s
	return parts, true
}

// passes reports whether the request context passes the condition.
func (c *Condition) passes(ctx Context, vars bool) bool {
	values, _ := ctx.Get(c.Key)
	present := len(values) > 0
	if c.Operator == Null {
		for _, v := range c.Values {
			if strings.EqualFold(v, "true") != present {
				return true
			}
		}
		return false
	}
	base, negated := positive(c.Operator)
	if !present {
		switch {
		case c.IfExists, c.Set == ForAllValues:
			return true
		case c.Set == ForAnyValue:
			return false
		}
		return negated
	}
	// A request value satisfies the operator when it matches a policy value
	// (for a negated operator: matches none). A value that is not of the
	// operator's type (a number, date, IP address) satisfies neither form.
	satisfies := func(v string) bool {
		matched, valid := c.match(base, v, ctx, vars)
		return valid && matched != negated
	}
	switch {
	case c.Set == ForAnyValue, c.Set == "" && !negated:
		for _, v := range values {
			if satisfies(v) {
				return true
			}
		}
		return false
	default: // ForAllValues, or a negated operator: no value may match
		for _, v := range values {
			if !satisfies(v) {
				return false
			}
		}
		return true
	}
}

// positive returns the positive form of an operator and whether op is
// negated.
func positive(op Operator) (Operator, bool) {
	switch op {
	case StringNotEquals:
		return StringEquals, true
	case StringNotEqualsIgnoreCase:
		return StringEqualsIgnoreCase, true
	case StringNotLike:
		return StringLike, true
	case NumericNotEquals:
		return NumericEquals, true
	case DateNotEquals:
		return DateEquals, true
	case NotIpAddress:
		return IpAddress, true
	case ArnNotEquals:
		return ArnEquals, true
	case ArnNotLike:
		return ArnLike, true
	}
	return op, false
}

// match reports whether the request value v matches any of the condition's
// values by the positive operator op, and whether v is valid for op.
func (c *Condition) match(op Operator, v string, ctx Context, vars bool) (matched, valid bool) {
	switch op {
	case StringEquals, StringEqualsIgnoreCase, StringLike, ArnEquals, ArnLike:
		pattern := op == StringLike || op == ArnEquals || op == ArnLike
		for _, pv := range c.Values {
			pv, escaped, ok := policyValue(pv, ctx, vars, pattern)
			if !ok {
				continue
			}
			var m bool
			switch op {
			case StringEquals:
				m = v == pv
			case StringEqualsIgnoreCase:
				m = strings.EqualFold(v, pv)
			case StringLike:
				m = wildcardMatch(pv, v, false, escaped)
			default:
				m = arnMatch(pv, v, escaped)
			}
			if m {
				return true, true
			}
		}
		return false, true
	case NumericEquals, NumericLessThan, NumericLessThanEquals, NumericGreaterThan, NumericGreaterThanEquals:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) {
			return false, false
		}
		for _, pv := range c.Values {
			if y, err := strconv.ParseFloat(pv, 64); err == nil && ordered(op, cmp.Compare(x, y)) {
				return true, true
			}
		}
		return false, true
	case DateEquals, DateLessThan, DateLessThanEquals, DateGreaterThan, DateGreaterThanEquals:
		t, ok := parseDate(v)
		if !ok {
			return false, false
		}
		for _, pv := range c.Values {
			if pt, ok := parseDate(pv); ok && ordered(op, t.Compare(pt)) {
				return true, true
			}
		}
		return false, true
	case Bool:
		for _, pv := range c.Values {
			if strings.EqualFold(v, pv) {
				return true, true
			}
		}
		return false, true
	case BinaryEquals:
		for _, pv := range c.Values {
			if v == pv {
				return true, true
			}
		}
		return false, true
	case IpAddress:
		return matchIP(v, c.Values)
	}
	return false, true
}

// ordered reports whether a comparison result cmp (request value against
// policy value) satisfies a Numeric or Date operator.
func ordered(op Operator, cmp int) bool {
	switch op {
	case NumericEquals, DateEquals:
		return cmp == 0
	case NumericLessThan, DateLessThan:
		return cmp < 0
	case NumericLessThanEquals, DateLessThanEquals:
		return cmp <= 0
	case NumericGreaterThan, DateGreaterThan:
		return cmp > 0
	case NumericGreaterThanEquals, DateGreaterThanEquals:
		return cmp >= 0
	}
	return false
}

// matchIP reports whether the address v is one of the addresses or in one
// of the CIDR blocks, and whether v is an address. IPv4-mapped IPv6
// addresses count as IPv4.
func matchIP(v string, values []string) (matched, valid bool) {
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return false, false
	}
	addr = addr.WithZone("").Unmap()
	for _, pv := range values {
		if strings.IndexByte(pv, '/') < 0 {
			if a, err := netip.ParseAddr(pv); err == nil && a.WithZone("").Unmap() == addr {
				return true, true
			}
			continue
		}
		pfx, err := netip.ParsePrefix(pv)
		if err != nil {
			continue
		}
		if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
		}
		if pfx.Contains(addr) {
			return true, true
		}
	}
	return false, true
}

// arnMatch matches an ARN against a pattern part by part, with wildcards in
// each part; ARNs of different part counts do not match.
func arnMatch(pattern, arn string, escaped bool) bool {
	pp, ok := splitARN(pattern)
	if !ok {
		return false
	}
	ap, ok := splitARN(arn)
	if !ok {
		return false
	}
	for i := range pp {
		if !wildcardMatch(pp[i], ap[i], false, escaped) {
			return false
		}
	}
	return true
}

// policyValue returns a policy value ready to compare: with its policy
// variables substituted when vars is set and it has any. escaped says
// whether the result is a pattern with escapes (see expand); ok is false
// when a variable has no value, and then the value matches nothing.
func policyValue(v string, ctx Context, vars, pattern bool) (out string, escaped, ok bool) {
	if !vars || !strings.Contains(v, "${") {
		return v, false, true
	}
	out, ok = expand(v, ctx, pattern)
	return out, pattern, ok
}

// expand substitutes the policy variables of v: ${key} by the value of key
// in ctx when it has exactly one (else by the default of ${key, 'default'},
// else ok is false), and ${*}, ${?} and ${$} by those characters. An
// unterminated ${ is literal.
//
// With pattern set the result is for wildcardMatch with escaped set: the
// substituted text is literal, so its *, ? and \ are escaped with \, and so
// is every \ of v, while v's own * and ? stay wildcards.
func expand(v string, ctx Context, pattern bool) (string, bool) {
	var b strings.Builder
	b.Grow(len(v) + 16)
	write := func(s string, specials string) {
		if !pattern {
			b.WriteString(s)
			return
		}
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(specials, s[i]) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(s[i])
		}
	}
	for {
		i := strings.Index(v, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i+2:], '}')
		if j < 0 {
			break
		}
		write(v[:i], `\`)
		name := v[i+2 : i+2+j]
		v = v[i+3+j:]
		switch name {
		case "*", "?", "$":
			write(name, `*?\`)
			continue
		}
		key, def, hasDef := cutDefault(name)
		if values, _ := ctx.Get(key); len(values) == 1 {
			write(values[0], `*?\`)
		} else if hasDef {
			write(def, `*?\`)
		} else {
			return "", false
		}
	}
	write(v, `\`)
	return b.String(), true
}

// cutDefault splits a variable such as "aws:PrincipalTag/team, 'none'" into
// its key and default value.
func cutDefault(name string) (key, def string, ok bool) {
	key, rest, found := strings.Cut(name, ",")
	if !found {
		return strings.TrimSpace(name), "", false
	}
	rest = strings.TrimSpace(rest)
	if len(rest) < 2 || rest[0] != '\'' || rest[len(rest)-1] != '\'' {
		return strings.TrimSpace(name), "", false
	}
	return strings.TrimSpace(key), rest[1 : len(rest)-1], true
}

// wildcardMatch reports whether s matches pattern, in which * stands for any
// run of characters (colons included) and ? for exactly one. With fold,
// letters match case-insensitively. With escaped, \ makes the character
// after it literal. It runs in O(len(pattern)·len(s)) time at worst, without
// allocating.
func wildcardMatch(pattern, s string, fold, escaped bool) bool {
	p, i := 0, 0
	star, next := -1, 0 // just after the last * seen, and where its run would end in s
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; {
			case c == '*':
				p++
				if p == len(pattern) {
					return true // a trailing * takes the rest
				}
				star, next = p, i
				continue
			case c == '?':
				p++
				i += runeLen(s[i:])
				continue
			default:
				lit := p
				if escaped && c == '\\' && p+1 < len(pattern) {
					lit++
					c = pattern[lit]
				}
				if c < utf8.RuneSelf && s[i] < utf8.RuneSelf { // the usual case: ASCII
					if c == s[i] || fold && lowerASCII(c) == lowerASCII(s[i]) {
						p, i = lit+1, i+1
						continue
					}
				} else if pn, sn := runeLen(pattern[lit:]), runeLen(s[i:]); sameRune(pattern[lit:lit+pn], s[i:i+sn], fold) {
					p, i = lit+pn, i+sn
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		next += runeLen(s[next:]) // let the last * take one more character
		p, i = star, next
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// runeLen returns the length of the first character of a non-empty string;
// an invalid UTF-8 byte counts as one character.
func runeLen(s string) int {
	if s[0] < utf8.RuneSelf {
		return 1
	}
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// sameRune reports whether two one-character strings are the same
// character, or with fold the same up to case.
func sameRune(a, b string, fold bool) bool {
	switch {
	case a == b:
		return true
	case !fold:
		return false
	}
	return utf8.ValidString(a) && utf8.ValidString(b) && strings.EqualFold(a, b)
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// MatchesAction reports whether the statement's Action (or NotAction)
// covers action, whatever its resources and conditions.
func (s *Statement) MatchesAction(action string) bool { return s.Action.matchAction(action) }
