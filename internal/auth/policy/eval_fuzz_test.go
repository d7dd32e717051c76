package policy_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rotor-secrets/rotor/internal/auth/policy"
)

// fuzzRequests are the requests FuzzEvaluate asks every policy about.
var fuzzRequests = []*policy.Request{
	benchRequest(),
	{Action: "SecretsManager:getSecretValue", Resource: secret, Principal: root},
	{Action: "secretsmanager:ListSecrets", Resource: "*", Principal: bob, Context: keys{
		"aws:username":        {"bob"},
		"aws:TagKeys":         {"env", "team", ""},
		"aws:SourceIp":        {"::ffff:203.0.113.5"},
		"aws:CurrentTime":     {"1772366400"},
		"aws:SecureTransport": {"TRUE"},
		"aws:PrincipalArn":    {bob},
		"aws:Empty":           {},
	}.context()},
	{Action: "rotor:CreateUser", Resource: "arn:aws:rotor::111122223333:user/${aws:username}", Principal: "", Context: keys{
		"aws:username":           {"*?\\${}"},
		"aws:SourceIp":           {"not an address"},
		"aws:CurrentTime":        {"tomorrow"},
		"aws:MultiFactorAuthAge": {"NaN", "1e400", "-0"},
		"aws:PrincipalArn":       {"arn:", "arn:::::::"},
		"aws:PrincipalTag/é":     {"\xff"},
	}.context()},
	{},
}

func FuzzEvaluate(f *testing.F) {
	for _, tt := range validDocs {
		f.Add(tt.doc)
	}
	f.Add(benchPolicy)
	f.Add(`{"Version":"2012-10-17","Statement":[
		{"Sid":"Own","Effect":"Allow","Action":["secretsmanager:Get*","secretsmanager:Describe*"],
		 "Resource":"arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:username}/*"},
		{"Sid":"Tagged","Effect":"Allow","Action":"secretsmanager:*","Resource":"*",
		 "Condition":{"ForAllValues:StringLike":{"aws:TagKeys":["env","team-?"]},"StringEqualsIgnoreCase":{"secretsmanager:ResourceTag/owner":"${aws:username}"}}},
		{"Sid":"Office","Effect":"Deny","NotAction":"secretsmanager:List*","NotResource":"arn:aws:secretsmanager:*:*:secret:public/*",
		 "Condition":{"NotIpAddressIfExists":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32"]},"DateGreaterThan":{"aws:CurrentTime":"2026-01-01"}}}]}`)
	f.Add(`{"Version":"2012-10-17","Statement":[
		{"Sid":"App","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/alice","111122223333"]},"Action":"secretsmanager:GetSecretValue","Resource":"*",
		 "Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"},"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}},
		{"Sid":"Others","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"*","Resource":"*",
		 "Condition":{"Null":{"aws:username":"false"},"ForAnyValue:StringNotEquals":{"aws:TagKeys":"${aws:PrincipalTag/team, 'x'}"}}}]}`)
	f.Add(`{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:rotor::111122223333:user/${aws:username}"}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := policy.Parse(doc)
		if err != nil {
			return
		}
		for _, r := range fuzzRequests {
			m := p.Evaluate(r)
			switch m.Decision {
			case policy.NotApplicable:
				if m.Statement != nil {
					t.Fatalf("NotApplicable decided by a statement")
				}
			case policy.DecisionAllow, policy.DecisionDeny:
				if m.Statement == nil || !statementOf(p, m.Statement) {
					t.Fatalf("decision %d by a statement not of the policy", m.Decision)
				}
				if (m.Decision == policy.DecisionDeny) != (m.Statement.Effect == policy.Deny) {
					t.Fatalf("decision %d by a statement with Effect %s", m.Decision, m.Statement.Effect)
				}
			default:
				t.Fatalf("unknown decision %d", m.Decision)
			}
			asIdentity := policy.Authorize(r, []*policy.Policy{p}, nil)
			asResource := policy.Authorize(r, nil, p)
			checkResult(t, m, asIdentity, "with an explicit deny in an identity-based policy", r.Action)
			checkResult(t, m, asResource, "with an explicit deny in a resource-based policy", r.Action)
		}
	})
}

// checkResult checks that Authorize with one policy agrees with Evaluate.
func checkResult(t *testing.T, m policy.Match, got policy.Result, denyReason, action string) {
	t.Helper()
	want := policy.Result{Deciding: m.Statement}
	switch m.Decision {
	case policy.DecisionAllow:
		want.Allowed = true
	case policy.DecisionDeny:
		want.Reason = denyReason
	default:
		want.Reason = "because no identity-based policy allows the " + action + " action"
	}
	if got != want {
		t.Fatalf("Authorize = %+v, want %+v", got, want)
	}
}

// translate turns an IAM pattern into a regular expression: the reference
// the evaluator's matcher is checked against.
func translate(pattern string) string {
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return b.String()
}

// FuzzWildcard checks wildcard matching — case-sensitive in StringLike,
// case-insensitive in Action — against regular expressions.
func FuzzWildcard(f *testing.F) {
	f.Add("secretsmanager:*Secret*Value", "secretsmanager:GetSecretValue")
	f.Add("a*b?c*", "aXbYcZ")
	f.Add("*?*?", "é")
	f.Add("K?", "\u212aX")
	f.Add("", "")
	f.Add("***", "")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return // regexp reads invalid UTF-8 as U+FFFD; the matcher compares bytes
		}
		cond := &policy.Policy{Version: policy.Version2008, Statements: []policy.Statement{{
			Effect:     policy.Allow,
			Action:     policy.Patterns{Values: []string{"*"}},
			Conditions: []policy.Condition{{Operator: policy.StringLike, Key: "aws:x", Values: []string{pattern}}},
		}}}
		r := &policy.Request{Action: "a:b", Resource: "*", Context: policy.Context{}}
		r.Context.Set("aws:x", s)
		if got, want := cond.Evaluate(r).Decision == policy.DecisionAllow, regexp.MustCompile(`^(?s:`+translate(pattern)+`)$`).MatchString(s); got != want {
			t.Fatalf("StringLike %q on %q = %v, want %v", pattern, s, got, want)
		}
		action := &policy.Policy{Version: policy.Version2008, Statements: []policy.Statement{{
			Effect: policy.Allow,
			Action: policy.Patterns{Values: []string{pattern}},
		}}}
		r = &policy.Request{Action: s, Resource: "*"}
		if got, want := action.Evaluate(r).Decision == policy.DecisionAllow, regexp.MustCompile(`^(?is:`+translate(pattern)+`)$`).MatchString(s); got != want {
			t.Fatalf("Action %q on %q = %v, want %v", pattern, s, got, want)
		}
	})
}

// FuzzVariable checks that a substituted policy variable matches literally
// while the rest of the pattern keeps its wildcards.
func FuzzVariable(f *testing.F) {
	f.Add("arn:aws:secretsmanager:*:*:secret:", "alice", "/*", "arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/db")
	f.Add(`a\*`, `*?\`, "?", `a\b*?\c`)
	f.Add("", "${*}", "", "${*}")
	f.Fuzz(func(t *testing.T, prefix, value, suffix, s string) {
		for _, v := range []string{prefix, value, suffix, s} {
			if !utf8.ValidString(v) {
				return
			}
		}
		if strings.Contains(prefix, "${") || strings.Contains(suffix, "${") {
			return
		}
		pattern := prefix + "${aws:username}" + suffix
		p := &policy.Policy{Version: policy.Version2012, Statements: []policy.Statement{{
			Effect:     policy.Allow,
			Action:     policy.Patterns{Values: []string{"*"}},
			Conditions: []policy.Condition{{Operator: policy.StringLike, Key: "aws:x", Values: []string{pattern}}},
		}}}
		r := &policy.Request{Action: "a:b", Resource: "*", Context: policy.Context{}}
		r.Context.Set("aws:x", s)
		r.Context.Set("aws:username", value)
		re := regexp.MustCompile(`^(?s:` + translate(prefix) + regexp.QuoteMeta(value) + translate(suffix) + `)$`)
		if got, want := p.Evaluate(r).Decision == policy.DecisionAllow, re.MatchString(s); got != want {
			t.Fatalf("StringLike %q with aws:username %q on %q = %v, want %v", pattern, value, s, got, want)
		}
	})
}
