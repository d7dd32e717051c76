// Package policy parses IAM JSON policy documents — the resource policies
// attached to secrets and the identity policies attached to Rotor's
// principals — answers questions about them that need no request context
// (is the syntax right, does the policy grant access to anyone at all) and
// evaluates them against requests.
//
// Parse, ParseResourcePolicy and ParseIdentityPolicy check a document
// against the IAM policy grammar and return a *Policy whose types are what a
// later evaluator needs: effects, action and resource patterns with their Not
// forms, principals by type and conditions with their operator already
// split into base operator, set qualifier and IfExists. Every failure is a
// *SyntaxError whose message names the statement and element at fault and
// is safe to return to an API client (MalformedPolicyDocumentException).
//
// # Grammar
//
// A document is 1–20,480 characters of one JSON object with Version
// ("2012-10-17" or "2008-10-17"; "2008-10-17" when absent), an optional Id
// and Statement: one statement object or a non-empty array of them. Other
// top-level keys are errors, as are duplicate keys anywhere and duplicate
// non-empty Sids. A statement has
//
//   - Sid: optional string.
//   - Effect: "Allow" or "Deny".
//   - exactly one of Action and NotAction: a string or non-empty array of
//     "*" or "service:Action", where both parts may use the wildcards * and ?.
//   - Resource or NotResource, at most one (exactly one in resource and
//     identity policies): "*" or ARNs ("arn:" and at least five colons),
//     wildcards allowed.
//   - Principal or NotPrincipal, at most one (exactly one in resource
//     policies, none in identity policies): "*" or an object whose keys are
//     AWS, Service, Federated and CanonicalUser, each a string or non-empty
//     array of strings. An AWS principal is "*", a 12-digit account id or an
//     ARN without wildcards (IAM does not match principals by pattern).
//   - Condition: optional object of operator → object of condition key →
//     string, number or boolean, or a non-empty array of them. Operators are
//     IAM's (see Operator), with an optional ForAnyValue: or ForAllValues:
//     prefix and an IfExists suffix (not on Null). Values are checked where
//     the operator fixes their type: numbers for Numeric*, dates (ISO 8601 or
//     epoch seconds) for Date*, true/false for Bool and Null, IP addresses or
//     CIDR blocks for IpAddress/NotIpAddress, base64 for BinaryEquals.
//
// Element names, Effect values and operator names are case-sensitive, as in
// IAM.
//
// # Public access
//
// IsPublic and Validate look for Allow statements that grant to everyone.
// See IsPublic for the exact rule; it errs toward reporting a policy as
// public, because PutResourcePolicy's BlockPublicPolicy relies on it.
//
// # Evaluation
//
// Authorize decides a Request — action, resource, caller and condition keys
// — by the caller's identity policies and the resource's policy, as IAM does
// within one account: an explicit Deny in any policy wins, then an Allow in
// any of them allows, and anything else is an implicit deny. Its Result
// carries the deciding statement and the end of AWS's AccessDenied message.
// Policy.Evaluate decides by one policy.
//
// A statement applies when all of these match:
//
//   - Action: case-insensitively; * matches any run of characters, colons
//     included, and ? exactly one. NotAction applies to every action no
//     pattern matches.
//   - Principal, when the statement has one: "*" and {"AWS": "*"} match
//     everyone; an ARN matches exactly that caller; an account id or root ARN
//     matches only the account's root principal (so naming its own account
//     grants a user nothing: that is left to the user's identity policies);
//     Service, Federated and CanonicalUser principals never match a Rotor
//     caller. NotPrincipal applies to every caller not matched.
//   - Resource: case-sensitively, with the same wildcards; a statement
//     without Resource applies to every resource, and a request for "*" (an
//     action on no resource) matches only the pattern "*". NotResource
//     inverts.
//   - Condition: every test passes (AND), and a test passes when any of the
//     key's values matches any of the test's values (OR). Negated operators
//     (StringNotEquals, NotIpAddress, …) pass when no value matches,
//     including when the key is absent; positive ones fail on an absent key,
//     IfExists passes it, Null tests presence. ForAnyValue: passes when some
//     request value satisfies the operator and fails on an absent key;
//     ForAllValues: passes when every request value does, and on an absent
//     key. A request value that is not a number, date or IP address where
//     the operator wants one satisfies neither the operator nor its negation.
//     Condition keys are case-insensitive (see Context).
//
// In 2012-10-17 policies, Resource values and the values of String and Arn
// operators may hold policy variables: ${key} stands for the value of a
// single-valued context key, such as ${aws:username}, or for the default in
// ${key, 'default'}; ${*}, ${?} and ${$} stand for those characters, never
// wildcards. A value with a variable that has no value matches nothing. In
// 2008-10-17 policies ${…} is literal text.
//
// Evaluation uses no regular expressions and allocates nothing for a
// typical request; substituting a policy variable, parsing some date forms
// and an implicit deny's Reason do allocate.
//
// Policies are immutable values once parsed and safe for concurrent use.
package policy

import (
	"net/netip"
	"strings"
)

// MaxLength is the longest policy document, in characters, that AWS accepts.
const MaxLength = 20480

// The policy language versions.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// SyntaxError reports a document that is not a valid policy. Msg says which
// statement and element are wrong and is meant for the API client.
type SyntaxError struct {
	Msg string
}

func (e *SyntaxError) Error() string { return e.Msg }

// Policy is a parsed policy document.
type Policy struct {
	Version    string // Version2012 or Version2008
	ID         string // the Id element, "" when absent
	Statements []Statement
}

// Effect is a statement's Effect.
type Effect string

// The two effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Statement is one statement of a policy.
type Statement struct {
	Sid    string
	Effect Effect
	// Principal holds Principal or NotPrincipal; nil when the statement has
	// neither (always so in identity policies).
	Principal *Principal
	// Action holds Action or NotAction; it always has values.
	Action Patterns
	// Resource holds Resource or NotResource; Values is nil when the
	// statement has neither (possible only with Parse).
	Resource Patterns
	// Conditions are the Condition element's tests, one per operator and key,
	// sorted by operator and then key. Every test must pass (IAM ANDs them).
	Conditions []Condition
}

// Patterns is the value of Action/NotAction or Resource/NotResource: strings
// that may contain the wildcards * and ?.
type Patterns struct {
	// Not is true for NotAction and NotResource: the statement applies to
	// everything the patterns do not match.
	Not    bool
	Values []string
}

// Principal is the value of Principal or NotPrincipal.
type Principal struct {
	// Not is true for NotPrincipal.
	Not bool
	// Any is true for the bare "*", which names every principal, including
	// anonymous ones.
	Any bool
	// The principals by type, in document order; "*" may appear in each.
	AWS           []string
	Service       []string
	Federated     []string
	CanonicalUser []string
}

// hasWildcard reports whether p names every principal of some type.
func (p *Principal) hasWildcard() bool {
	if p.Any {
		return true
	}
	for _, list := range [][]string{p.AWS, p.Service, p.Federated, p.CanonicalUser} {
		for _, v := range list {
			if v == "*" {
				return true
			}
		}
	}
	return false
}

// Parse parses a policy of either kind: a statement may name principals or
// not, and may omit Resource. Use ParseResourcePolicy or ParseIdentityPolicy
// where the kind is known. Errors are *SyntaxError.
func Parse(doc string) (*Policy, error) {
	return parse(doc, anyPolicy)
}

// ParseResourcePolicy parses a resource policy, such as a secret's: every
// statement must have Principal or NotPrincipal, and Resource or
// NotResource. Errors are *SyntaxError.
func ParseResourcePolicy(doc string) (*Policy, error) {
	return parse(doc, resourcePolicy)
}

// ParseIdentityPolicy parses an identity policy, attached to a principal: no
// statement may have Principal or NotPrincipal, and every statement must
// have Resource or NotResource. Errors are *SyntaxError.
func ParseIdentityPolicy(doc string) (*Policy, error) {
	return parse(doc, identityPolicy)
}

// IsPublic reports whether the policy grants access to every principal.
//
// A statement is public when its Effect is Allow, it names every principal —
// Principal "*", a "*" in any principal type such as {"AWS": "*"}, or any
// NotPrincipal (which grants to everyone not listed) — and none of its
// conditions restricts who can use it. A condition restricts when it tests
// one of the keys aws:PrincipalAccount, aws:PrincipalArn, aws:PrincipalOrgID,
// aws:SourceAccount, aws:SourceArn, aws:SourceIp, aws:SourceVpc or
// aws:SourceVpce (case-insensitively) with a positive operator (StringEquals,
// StringEqualsIgnoreCase, StringLike, ArnEquals, ArnLike, IpAddress, with or
// without ForAnyValue:) and none of its values is broad. A condition does
// not restrict when:
//
//   - its operator is negated (StringNotEquals, NotIpAddress, …): it grants
//     to everyone outside a set;
//   - it uses IfExists or ForAllValues:, both of which pass when the request
//     lacks the key — aws:SourceVpc, for one, is absent from every request
//     that does not come through a VPC endpoint;
//   - a value is broad: all wildcards, an IP block of prefix length 0, a
//     wildcard in an account, organization or VPC value, or an ARN whose
//     account field has a wildcard.
//
// Other keys (aws:userid, tags, …) do not count, and a Deny statement is not
// credited with narrowing an Allow. Both choices can only make IsPublic say
// true where an exact analysis might say false, never the reverse.
func (p *Policy) IsPublic() bool {
	for i := range p.Statements {
		if p.Statements[i].isPublic() {
			return true
		}
	}
	return false
}

func (s *Statement) isPublic() bool {
	if s.Effect != Allow || s.Principal == nil {
		return false
	}
	if !s.Principal.Not && !s.Principal.hasWildcard() {
		return false
	}
	for _, c := range s.Conditions {
		if c.restricts() {
			return false
		}
	}
	return true
}

// restrictingKeys are the condition keys that limit who can use a grant,
// lower-cased, mapped to the kind of value they hold.
var restrictingKeys = map[string]keyKind{
	"aws:principalaccount": accountKey,
	"aws:sourceaccount":    accountKey,
	"aws:principalorgid":   accountKey,
	"aws:sourcevpc":        accountKey,
	"aws:sourcevpce":       accountKey,
	"aws:principalarn":     arnKey,
	"aws:sourcearn":        arnKey,
	"aws:sourceip":         ipKey,
}

type keyKind int

const (
	accountKey keyKind = iota + 1 // an identifier: any wildcard makes it broad
	arnKey                        // an ARN: broad when its account field has a wildcard
	ipKey
)

func (c *Condition) restricts() bool {
	kk := restrictingKeys[strings.ToLower(c.Key)]
	if kk == 0 || c.IfExists || c.Set == ForAllValues {
		return false
	}
	switch c.Operator {
	case StringEquals, StringEqualsIgnoreCase, StringLike, ArnEquals, ArnLike:
		if kk == ipKey {
			return false
		}
	case IpAddress:
		if kk != ipKey {
			return false
		}
	default:
		return false
	}
	like := c.Operator == StringLike || c.Operator == ArnLike
	for _, v := range c.Values {
		if broadValue(kk, like, v) {
			return false
		}
	}
	return true
}

func broadValue(kk keyKind, like bool, v string) bool {
	switch kk {
	case ipKey:
		pfx, err := netip.ParsePrefix(v)
		return err == nil && pfx.Bits() == 0
	case accountKey:
		return like && strings.ContainsAny(v, "*?")
	case arnKey:
		if !like {
			return false
		}
		parts := strings.SplitN(v, ":", 6)
		return len(parts) < 6 || strings.ContainsAny(parts[4], "*?") || strings.Trim(v, "*?") == ""
	}
	return true
}
