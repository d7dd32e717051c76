package policy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/auth/policy"
)

const (
	account   = "111122223333"
	alice     = "arn:aws:iam::111122223333:user/alice"
	bob       = "arn:aws:iam::111122223333:user/bob"
	root      = "arn:aws:iam::111122223333:root"
	otherRoot = "arn:aws:iam::444455556666:root"
	secret    = "arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/db-AbCdEf"
	getValue  = "secretsmanager:GetSecretValue"
)

// keys builds a Context; it is nil without keys, as a request without
// condition keys may have.
type keys map[string][]string

func (k keys) context() policy.Context {
	if k == nil {
		return nil
	}
	c := policy.Context{}
	for key, values := range k {
		c.Set(key, values...)
	}
	return c
}

// list is a JSON array of strings.
func list(values ...string) string {
	b, err := json.Marshal(values)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// evaluate parses doc with Parse and evaluates r, checking that the
// deciding statement goes with the decision.
func evaluate(t *testing.T, doc string, r *policy.Request) policy.Decision {
	t.Helper()
	p, err := policy.Parse(doc)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	m := p.Evaluate(r)
	switch m.Decision {
	case policy.NotApplicable:
		if m.Statement != nil {
			t.Fatalf("NotApplicable with statement %+v", m.Statement)
		}
	case policy.DecisionAllow, policy.DecisionDeny:
		want := policy.Allow
		if m.Decision == policy.DecisionDeny {
			want = policy.Deny
		}
		if m.Statement == nil || m.Statement.Effect != want {
			t.Fatalf("decision %d decided by %+v", m.Decision, m.Statement)
		}
	default:
		t.Fatalf("unknown decision %d", m.Decision)
	}
	return m.Decision
}

// applies reports whether doc's one Allow statement applies to r.
func applies(t *testing.T, doc string, r *policy.Request) bool {
	t.Helper()
	return evaluate(t, doc, r) == policy.DecisionAllow
}

func TestContext(t *testing.T) {
	c := policy.Context{}
	c.Set("AWS:SourceIp", "203.0.113.5")
	c.Set("aws:TagKeys", "env", "team")
	c.Set("aws:PrincipalTag/Équipe", "bleu")
	c.Set("aws:Empty")
	long := "aws:" + strings.Repeat("K", 200)
	c.Set(long, "v")

	if _, ok := c["aws:sourceip"]; !ok {
		t.Errorf("Set did not store the key lower-cased: %v", c)
	}
	tests := []struct {
		key  string
		want []string
		ok   bool
	}{
		{"aws:sourceip", []string{"203.0.113.5"}, true},
		{"aws:SourceIp", []string{"203.0.113.5"}, true},
		{"AWS:SOURCEIP", []string{"203.0.113.5"}, true},
		{"aws:tagkeys", []string{"env", "team"}, true},
		{"aws:principaltag/équipe", []string{"bleu"}, true},
		{"AWS:PrincipalTag/ÉQUIPE", []string{"bleu"}, true},
		{strings.ToLower(long), []string{"v"}, true},
		{long, []string{"v"}, true},
		{"aws:empty", nil, true},
		{"aws:SourceVpc", nil, false},
		{"aws:sourceip ", nil, false},
	}
	for _, tt := range tests {
		got, ok := c.Get(tt.key)
		if ok != tt.ok || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
	if v, ok := policy.Context(nil).Get("aws:SourceIp"); ok || v != nil {
		t.Errorf("nil Context Get = %q, %v", v, ok)
	}
	c.Set("aws:SOURCEIP", "198.51.100.7")
	if v, _ := c.Get("aws:SourceIp"); len(v) != 1 || v[0] != "198.51.100.7" {
		t.Errorf("Set did not replace the value: %q", v)
	}
}

func TestEvaluateAction(t *testing.T) {
	tests := []struct {
		element  string // Action or NotAction
		patterns []string
		action   string
		want     bool
	}{
		{"Action", []string{"secretsmanager:GetSecretValue"}, getValue, true},
		{"Action", []string{"secretsmanager:GetSecretValue"}, "secretsmanager:GetSecretValues", false},
		{"Action", []string{"secretsmanager:GetSecretValue"}, "secretsmanager:GetSecret", false},
		{"Action", []string{"secretsmanager:Get*"}, getValue, true},
		{"Action", []string{"secretsmanager:Get*"}, "secretsmanager:Get", true},
		{"Action", []string{"secretsmanager:Get*"}, "secretsmanager:PutSecretValue", false},
		{"Action", []string{"secretsmanager:*"}, "secretsmanager:ListSecrets", true},
		{"Action", []string{"secretsmanager:*"}, "rotor:CreateUser", false},
		{"Action", []string{"*"}, "rotor:CreateUser", true},
		{"Action", []string{"*"}, "", true},
		{"Action", []string{"secretsmanager:?etSecretValue"}, getValue, true},
		{"Action", []string{"secretsmanager:?etSecretValue"}, "secretsmanager:etSecretValue", false},
		{"Action", []string{"secretsmanager:?etSecretValue"}, "secretsmanager:GGetSecretValue", false},
		{"Action", []string{"secretsmanager:Get?"}, "secretsmanager:Get", false},
		{"Action", []string{"SecretsManager:getsecretvalue"}, getValue, true},
		{"Action", []string{"secretsmanager:Get*"}, "SECRETSMANAGER:GETSECRETVALUE", true},
		{"Action", []string{"secrets*:*Secret*"}, "secretsmanager:DescribeSecret", true},
		{"Action", []string{"*:Get*"}, "rotor:GetUser", true},
		{"Action", []string{"s*:*"}, "rotor:CreateUser", false},
		{"Action", []string{"secretsmanager:*Secret*Value"}, getValue, true},
		{"Action", []string{"secretsmanager:*Secret*Value"}, "secretsmanager:PutSecretValueNow", false},
		{"Action", []string{"secretsmanager:*e*e*e"}, "secretsmanager:eeeeeee", true},
		{"Action", []string{"rotor:*User"}, "rotor:CreateUser", true},
		{"Action", []string{"kms:Decrypt", "rotor:*"}, "rotor:DeleteUser", true},
		{"NotAction", []string{"secretsmanager:Delete*"}, getValue, true},
		{"NotAction", []string{"secretsmanager:Delete*"}, "secretsmanager:DeleteSecret", false},
		{"NotAction", []string{"secretsmanager:Delete*"}, "SecretsManager:deleteSecret", false},
		{"NotAction", []string{"secretsmanager:*", "rotor:*"}, "kms:Decrypt", true},
		{"NotAction", []string{"secretsmanager:*", "rotor:*"}, "rotor:ListUsers", false},
		{"NotAction", []string{"*"}, getValue, false},
	}
	for _, tt := range tests {
		t.Run(tt.element+" "+strings.Join(tt.patterns, ",")+" "+tt.action, func(t *testing.T) {
			doc := stmt(`"Effect":"Allow","` + tt.element + `":` + list(tt.patterns...) + `,"Resource":"*"`)
			if got := applies(t, doc, &policy.Request{Action: tt.action, Resource: secret, Principal: alice}); got != tt.want {
				t.Errorf("applies = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluateResource(t *testing.T) {
	tests := []struct {
		element  string // Resource or NotResource; "" for neither
		patterns []string
		resource string
		want     bool
	}{
		{"Resource", []string{"*"}, secret, true},
		{"Resource", []string{"*"}, "*", true},
		{"Resource", []string{secret}, secret, true},
		{"Resource", []string{secret}, secret + "x", false},
		{"Resource", []string{"arn:aws:secretsmanager:us-east-1:111122223333:secret:Alice/db-AbCdEf"}, secret, false},
		{"Resource", []string{"arn:aws:secretsmanager:*:111122223333:secret:alice/*"}, secret, true},
		{"Resource", []string{"arn:aws:secretsmanager:*:444455556666:secret:alice/*"}, secret, false},
		{"Resource", []string{"arn:aws:secretsmanager:*:*:*"}, secret, true},
		{"Resource", []string{"arn:aws:secretsmanager:us-east-1:*:alice/*"}, secret, true},
		{"Resource", []string{"arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/db-??????"}, secret, true},
		{"Resource", []string{"arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/db-???????"}, secret, false},
		{"Resource", []string{"arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/db-AbCdEf"}, "*", false},
		{"Resource", []string{"arn:*:*:*:*:*"}, "*", false},
		{"Resource", []string{"arn:aws:kms:*:*:key/*", secret}, secret, true},
		{"NotResource", []string{"arn:aws:secretsmanager:*:*:secret:prod/*"}, secret, true},
		{"NotResource", []string{secret}, secret, false},
		{"NotResource", []string{secret}, "*", true},
		{"NotResource", []string{"*"}, secret, false},
		{"NotResource", []string{"*"}, "*", false},
		{"", nil, secret, true},
		{"", nil, "*", true},
	}
	for _, tt := range tests {
		t.Run(tt.element+" "+strings.Join(tt.patterns, ",")+" "+tt.resource, func(t *testing.T) {
			members := `"Effect":"Allow","Action":"*"`
			if tt.element != "" {
				members += `,"` + tt.element + `":` + list(tt.patterns...)
			}
			if got := applies(t, stmt(members), &policy.Request{Action: getValue, Resource: tt.resource, Principal: alice}); got != tt.want {
				t.Errorf("applies = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluatePrincipal(t *testing.T) {
	tests := []struct {
		name      string
		principal string // the Principal or NotPrincipal member; "" for neither
		caller    string
		want      bool
	}{
		{"star, user", `"Principal":"*"`, alice, true},
		{"star, root", `"Principal":"*"`, root, true},
		{"star, anonymous", `"Principal":"*"`, "", true},
		{"aws star", `"Principal":{"AWS":"*"}`, alice, true},
		{"user arn, same user", `"Principal":{"AWS":"` + alice + `"}`, alice, true},
		{"user arn, other user", `"Principal":{"AWS":"` + alice + `"}`, bob, false},
		{"user arn, root", `"Principal":{"AWS":"` + alice + `"}`, root, false},
		{"user arn, other case", `"Principal":{"AWS":"arn:aws:iam::111122223333:user/Alice"}`, alice, false},
		{"user list", `"Principal":{"AWS":["` + bob + `","` + alice + `"]}`, alice, true},
		{"account id, user", `"Principal":{"AWS":"` + account + `"}`, alice, false},
		{"account id, root", `"Principal":{"AWS":"` + account + `"}`, root, true},
		{"account id, other root", `"Principal":{"AWS":"` + account + `"}`, otherRoot, false},
		{"account id, root in another partition", `"Principal":{"AWS":"` + account + `"}`, "arn:aws-cn:iam::111122223333:root", true},
		{"account id, not an arn", `"Principal":{"AWS":"` + account + `"}`, account, false},
		{"root arn, user", `"Principal":{"AWS":"` + root + `"}`, alice, false},
		{"root arn, root", `"Principal":{"AWS":"` + root + `"}`, root, true},
		{"root arn, other root", `"Principal":{"AWS":"` + root + `"}`, otherRoot, false},
		{"service", `"Principal":{"Service":"secretsmanager.amazonaws.com"}`, alice, false},
		{"service star", `"Principal":{"Service":"*"}`, alice, false},
		{"federated", `"Principal":{"Federated":"cognito-identity.amazonaws.com"}`, alice, false},
		{"canonical user", `"Principal":{"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}`, alice, false},
		{"service and aws star", `"Principal":{"Service":"lambda.amazonaws.com","AWS":"*"}`, alice, true},
		{"not principal user, same user", `"NotPrincipal":{"AWS":"` + alice + `"}`, alice, false},
		{"not principal user, other user", `"NotPrincipal":{"AWS":"` + alice + `"}`, bob, true},
		{"not principal account, user", `"NotPrincipal":{"AWS":"` + account + `"}`, alice, true},
		{"not principal account, root", `"NotPrincipal":{"AWS":"` + account + `"}`, root, false},
		{"not principal star", `"NotPrincipal":"*"`, alice, false},
		{"not principal service", `"NotPrincipal":{"Service":"lambda.amazonaws.com"}`, alice, true},
		{"no principal", "", alice, true},
		{"no principal, anonymous", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members := `"Effect":"Allow","Action":"*","Resource":"*"`
			if tt.principal != "" {
				members += "," + tt.principal
			}
			if got := applies(t, stmt(members), &policy.Request{Action: getValue, Resource: secret, Principal: tt.caller}); got != tt.want {
				t.Errorf("applies = %v, want %v", got, tt.want)
			}
		})
	}
}

var conditionTests = []struct {
	name string
	cond string // the Condition element
	keys keys
	want bool
}{
	// StringEquals and StringNotEquals.
	{"StringEquals equal", `{"StringEquals":{"aws:username":"alice"}}`, keys{"aws:username": {"alice"}}, true},
	{"StringEquals different", `{"StringEquals":{"aws:username":"alice"}}`, keys{"aws:username": {"bob"}}, false},
	{"StringEquals is case-sensitive", `{"StringEquals":{"aws:username":"alice"}}`, keys{"aws:username": {"Alice"}}, false},
	{"StringEquals absent", `{"StringEquals":{"aws:username":"alice"}}`, nil, false},
	{"StringEquals other key only", `{"StringEquals":{"aws:username":"alice"}}`, keys{"aws:userid": {"alice"}}, false},
	{"StringEquals any policy value", `{"StringEquals":{"aws:username":["bob","alice"]}}`, keys{"aws:username": {"alice"}}, true},
	{"StringEquals any request value", `{"StringEquals":{"aws:TagKeys":"team"}}`, keys{"aws:TagKeys": {"env", "team"}}, true},
	{"StringEquals number value", `{"StringEquals":{"aws:PrincipalAccount":111122223333}}`, keys{"aws:PrincipalAccount": {account}}, true},
	{"StringEquals key case in policy", `{"StringEquals":{"AWS:UserName":"alice"}}`, keys{"aws:username": {"alice"}}, true},
	{"StringEquals key case in context", `{"StringEquals":{"secretsmanager:resourcetag/env":"prod"}}`, keys{"SecretsManager:ResourceTag/Env": {"prod"}}, true},
	{"StringEquals empty key", `{"StringEquals":{"aws:TagKeys":"env"}}`, keys{"aws:TagKeys": {}}, false},
	{"StringNotEquals equal", `{"StringNotEquals":{"aws:username":"alice"}}`, keys{"aws:username": {"alice"}}, false},
	{"StringNotEquals different", `{"StringNotEquals":{"aws:username":"alice"}}`, keys{"aws:username": {"bob"}}, true},
	{"StringNotEquals case differs", `{"StringNotEquals":{"aws:username":"alice"}}`, keys{"aws:username": {"ALICE"}}, true},
	{"StringNotEquals absent", `{"StringNotEquals":{"aws:username":"alice"}}`, nil, true},
	{"StringNotEquals one policy value equal", `{"StringNotEquals":{"aws:username":["bob","alice"]}}`, keys{"aws:username": {"alice"}}, false},
	{"StringNotEquals no policy value equal", `{"StringNotEquals":{"aws:username":["bob","carol"]}}`, keys{"aws:username": {"alice"}}, true},
	{"StringNotEquals one request value equal", `{"StringNotEquals":{"aws:TagKeys":"env"}}`, keys{"aws:TagKeys": {"env", "team"}}, false},
	{"StringNotEquals no request value equal", `{"StringNotEquals":{"aws:TagKeys":"env"}}`, keys{"aws:TagKeys": {"owner", "team"}}, true},

	// IgnoreCase.
	{"StringEqualsIgnoreCase", `{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}`, keys{"aws:username": {"alice"}}, true},
	{"StringEqualsIgnoreCase unicode", `{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"ÉQUIPE"}}`, keys{"aws:PrincipalTag/team": {"équipe"}}, true},
	{"StringEqualsIgnoreCase different", `{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}`, keys{"aws:username": {"bob"}}, false},
	{"StringEqualsIgnoreCase absent", `{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}`, nil, false},
	{"StringNotEqualsIgnoreCase equal", `{"StringNotEqualsIgnoreCase":{"aws:username":"ALICE"}}`, keys{"aws:username": {"alice"}}, false},
	{"StringNotEqualsIgnoreCase different", `{"StringNotEqualsIgnoreCase":{"aws:username":"ALICE"}}`, keys{"aws:username": {"bob"}}, true},
	{"StringNotEqualsIgnoreCase absent", `{"StringNotEqualsIgnoreCase":{"aws:username":"ALICE"}}`, nil, true},

	// StringLike.
	{"StringLike star", `{"StringLike":{"aws:PrincipalTag/team":"team-*"}}`, keys{"aws:PrincipalTag/team": {"team-blue"}}, true},
	{"StringLike star empty", `{"StringLike":{"aws:PrincipalTag/team":"team-*"}}`, keys{"aws:PrincipalTag/team": {"team-"}}, true},
	{"StringLike question", `{"StringLike":{"aws:PrincipalTag/team":"team-?"}}`, keys{"aws:PrincipalTag/team": {"team-b"}}, true},
	{"StringLike question is one character", `{"StringLike":{"aws:PrincipalTag/team":"team-?"}}`, keys{"aws:PrincipalTag/team": {"team-bb"}}, false},
	{"StringLike question is one rune", `{"StringLike":{"aws:PrincipalTag/team":"team-?"}}`, keys{"aws:PrincipalTag/team": {"team-é"}}, true},
	{"StringLike is case-sensitive", `{"StringLike":{"aws:PrincipalTag/team":"Team-*"}}`, keys{"aws:PrincipalTag/team": {"team-blue"}}, false},
	{"StringLike without wildcards", `{"StringLike":{"aws:username":"alice"}}`, keys{"aws:username": {"alice"}}, true},
	{"StringLike star matches colons", `{"StringLike":{"aws:userid":"AIDA*"}}`, keys{"aws:userid": {"AIDA:x:y"}}, true},
	{"StringLike absent", `{"StringLike":{"aws:username":"*"}}`, nil, false},
	{"StringNotLike matching", `{"StringNotLike":{"aws:PrincipalTag/team":"team-*"}}`, keys{"aws:PrincipalTag/team": {"team-blue"}}, false},
	{"StringNotLike not matching", `{"StringNotLike":{"aws:PrincipalTag/team":"team-*"}}`, keys{"aws:PrincipalTag/team": {"ops"}}, true},
	{"StringNotLike absent", `{"StringNotLike":{"aws:PrincipalTag/team":"team-*"}}`, nil, true},

	// Numeric.
	{"NumericEquals", `{"NumericEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3600"}}, true},
	{"NumericEquals other notation", `{"NumericEquals":{"aws:MultiFactorAuthAge":"1e3"}}`, keys{"aws:MultiFactorAuthAge": {"1000.0"}}, true},
	{"NumericEquals different", `{"NumericEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3601"}}, false},
	{"NumericEquals not a number", `{"NumericEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"soon"}}, false},
	{"NumericEquals absent", `{"NumericEquals":{"aws:MultiFactorAuthAge":3600}}`, nil, false},
	{"NumericNotEquals different", `{"NumericNotEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"100"}}, true},
	{"NumericNotEquals equal", `{"NumericNotEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3600.0"}}, false},
	{"NumericNotEquals absent", `{"NumericNotEquals":{"aws:MultiFactorAuthAge":3600}}`, nil, true},
	{"NumericNotEquals not a number", `{"NumericNotEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"soon"}}, false},
	{"NumericNotEquals NaN", `{"NumericNotEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"NaN"}}, false},
	{"NumericLessThan less", `{"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"100"}}, true},
	{"NumericLessThan equal", `{"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3600"}}, false},
	{"NumericLessThan negative", `{"NumericLessThan":{"aws:MultiFactorAuthAge":0}}`, keys{"aws:MultiFactorAuthAge": {"-1.5"}}, true},
	{"NumericLessThan absent", `{"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}`, nil, false},
	{"NumericLessThanEquals equal", `{"NumericLessThanEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3600"}}, true},
	{"NumericLessThanEquals greater", `{"NumericLessThanEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3601"}}, false},
	{"NumericGreaterThan greater", `{"NumericGreaterThan":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3600.5"}}, true},
	{"NumericGreaterThan equal", `{"NumericGreaterThan":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3600"}}, false},
	{"NumericGreaterThanEquals equal", `{"NumericGreaterThanEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"3600"}}, true},
	{"NumericGreaterThanEquals less", `{"NumericGreaterThanEquals":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"10"}}, false},
	{"NumericLessThan any policy value", `{"NumericLessThan":{"aws:MultiFactorAuthAge":[10,3600]}}`, keys{"aws:MultiFactorAuthAge": {"100"}}, true},

	// Date: aws:CurrentTime is 2026-03-01T12:00:00Z, epoch 1772366400.
	{"DateLessThan before", `{"DateLessThan":{"aws:CurrentTime":"2026-12-31T23:59:59Z"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, true},
	{"DateLessThan after", `{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, false},
	{"DateLessThan same", `{"DateLessThan":{"aws:CurrentTime":"2026-03-01T12:00:00Z"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, false},
	{"DateLessThan absent", `{"DateLessThan":{"aws:CurrentTime":"2026-12-31T23:59:59Z"}}`, nil, false},
	{"DateLessThanEquals same", `{"DateLessThanEquals":{"aws:CurrentTime":"2026-03-01T12:00:00Z"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, true},
	{"DateGreaterThan date only", `{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, true},
	{"DateGreaterThan before", `{"DateGreaterThan":{"aws:CurrentTime":"2026-12-31T23:59:59Z"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, false},
	{"DateGreaterThanEquals same", `{"DateGreaterThanEquals":{"aws:CurrentTime":"2026-03-01T12:00:00Z"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, true},
	{"DateEquals across zones", `{"DateEquals":{"aws:CurrentTime":"2026-03-01T14:00:00+02:00"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, true},
	{"DateEquals fractional seconds", `{"DateEquals":{"aws:CurrentTime":"2026-03-01T12:00:00Z"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00.000Z"}}, true},
	{"DateEquals epoch request", `{"DateEquals":{"aws:CurrentTime":"2026-03-01T12:00:00Z"}}`, keys{"aws:CurrentTime": {"1772366400"}}, true},
	{"DateEquals epoch policy", `{"DateEquals":{"aws:EpochTime":1772366400}}`, keys{"aws:EpochTime": {"2026-03-01T12:00:00Z"}}, true},
	{"DateLessThan epoch both", `{"DateLessThan":{"aws:EpochTime":1772366401}}`, keys{"aws:EpochTime": {"1772366400"}}, true},
	{"DateLessThan not a date", `{"DateLessThan":{"aws:CurrentTime":"2026-12-31T23:59:59Z"}}`, keys{"aws:CurrentTime": {"today"}}, false},
	{"DateNotEquals different", `{"DateNotEquals":{"aws:CurrentTime":"2026-01-01"}}`, keys{"aws:CurrentTime": {"2026-03-01T12:00:00Z"}}, true},
	{"DateNotEquals same", `{"DateNotEquals":{"aws:CurrentTime":"2026-03-01T12:00:00Z"}}`, keys{"aws:CurrentTime": {"1772366400"}}, false},
	{"DateNotEquals absent", `{"DateNotEquals":{"aws:CurrentTime":"2026-01-01"}}`, nil, true},
	{"DateNotEquals not a date", `{"DateNotEquals":{"aws:CurrentTime":"2026-01-01"}}`, keys{"aws:CurrentTime": {"today"}}, false},

	// Bool.
	{"Bool true", `{"Bool":{"aws:SecureTransport":true}}`, keys{"aws:SecureTransport": {"true"}}, true},
	{"Bool false request", `{"Bool":{"aws:SecureTransport":true}}`, keys{"aws:SecureTransport": {"false"}}, false},
	{"Bool false policy", `{"Bool":{"aws:SecureTransport":"false"}}`, keys{"aws:SecureTransport": {"false"}}, true},
	{"Bool is case-insensitive", `{"Bool":{"aws:SecureTransport":"True"}}`, keys{"aws:SecureTransport": {"TRUE"}}, true},
	{"Bool absent", `{"Bool":{"aws:SecureTransport":true}}`, nil, false},
	{"Bool not a boolean", `{"Bool":{"aws:SecureTransport":true}}`, keys{"aws:SecureTransport": {"yes"}}, false},

	// BinaryEquals.
	{"BinaryEquals equal", `{"BinaryEquals":{"aws:Binary":"QmluYXJ5VmFsdWU="}}`, keys{"aws:Binary": {"QmluYXJ5VmFsdWU="}}, true},
	{"BinaryEquals different", `{"BinaryEquals":{"aws:Binary":"QmluYXJ5VmFsdWU="}}`, keys{"aws:Binary": {"QmluYXJ5VmFsdWF="}}, false},
	{"BinaryEquals absent", `{"BinaryEquals":{"aws:Binary":"QmluYXJ5VmFsdWU="}}`, nil, false},

	// IP addresses.
	{"IpAddress in block", `{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"203.0.113.5"}}, true},
	{"IpAddress outside block", `{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"203.0.114.5"}}, false},
	{"IpAddress single address", `{"IpAddress":{"aws:SourceIp":"198.51.100.7"}}`, keys{"aws:SourceIp": {"198.51.100.7"}}, true},
	{"IpAddress other single address", `{"IpAddress":{"aws:SourceIp":"198.51.100.7"}}`, keys{"aws:SourceIp": {"198.51.100.8"}}, false},
	{"IpAddress /32", `{"IpAddress":{"aws:SourceIp":"198.51.100.7/32"}}`, keys{"aws:SourceIp": {"198.51.100.7"}}, true},
	{"IpAddress host bits set", `{"IpAddress":{"aws:SourceIp":"203.0.113.9/24"}}`, keys{"aws:SourceIp": {"203.0.113.200"}}, true},
	{"IpAddress any of blocks", `{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","203.0.113.0/24"]}}`, keys{"aws:SourceIp": {"203.0.113.5"}}, true},
	{"IpAddress everything v4", `{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`, keys{"aws:SourceIp": {"192.0.2.1"}}, true},
	{"IpAddress v6 in block", `{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, keys{"aws:SourceIp": {"2001:db8:1::7"}}, true},
	{"IpAddress v6 outside block", `{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, keys{"aws:SourceIp": {"2001:db9::7"}}, false},
	{"IpAddress v6 single address", `{"IpAddress":{"aws:SourceIp":"2001:db8::1"}}`, keys{"aws:SourceIp": {"2001:0db8:0:0:0:0:0:1"}}, true},
	{"IpAddress v6 zone", `{"IpAddress":{"aws:SourceIp":"fe80::/10"}}`, keys{"aws:SourceIp": {"fe80::1%eth0"}}, true},
	{"IpAddress v6 request, v4 block", `{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"2001:db8::1"}}, false},
	{"IpAddress v4 request, v6 block", `{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, keys{"aws:SourceIp": {"203.0.113.5"}}, false},
	{"IpAddress mapped request", `{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"::ffff:203.0.113.5"}}, true},
	{"IpAddress mapped block", `{"IpAddress":{"aws:SourceIp":"::ffff:203.0.113.0/120"}}`, keys{"aws:SourceIp": {"203.0.113.5"}}, true},
	{"IpAddress mapped address", `{"IpAddress":{"aws:SourceIp":"::ffff:203.0.113.5"}}`, keys{"aws:SourceIp": {"203.0.113.5"}}, true},
	{"IpAddress not an address", `{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`, keys{"aws:SourceIp": {"localhost"}}, false},
	{"IpAddress block as request", `{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`, keys{"aws:SourceIp": {"203.0.113.0/24"}}, false},
	{"IpAddress absent", `{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`, nil, false},
	{"NotIpAddress in block", `{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"203.0.113.5"}}, false},
	{"NotIpAddress outside block", `{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"192.0.2.1"}}, true},
	{"NotIpAddress in one of blocks", `{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","203.0.113.0/24"]}}`, keys{"aws:SourceIp": {"10.1.2.3"}}, false},
	{"NotIpAddress v6 outside", `{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"2001:db8::1"}}, true},
	{"NotIpAddress absent", `{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, nil, true},
	{"NotIpAddress not an address", `{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"localhost"}}, false},

	// ARNs.
	{"ArnLike user path", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`, keys{"aws:PrincipalArn": {alice}}, true},
	{"ArnLike role", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`, keys{"aws:PrincipalArn": {"arn:aws:iam::111122223333:role/app"}}, false},
	{"ArnLike any account", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/alice"}}`, keys{"aws:PrincipalArn": {alice}}, true},
	{"ArnLike question", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::????????????:user/alice"}}`, keys{"aws:PrincipalArn": {alice}}, true},
	{"ArnLike is case-sensitive", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/Alice"}}`, keys{"aws:PrincipalArn": {alice}}, false},
	{"ArnLike star stays in its part", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*"}}`, keys{"aws:PrincipalArn": {alice}}, false},
	{"ArnLike star stays in its part 2", `{"ArnLike":{"aws:PrincipalArn":"arn:*:user/alice"}}`, keys{"aws:PrincipalArn": {alice}}, false},
	{"ArnLike star alone", `{"ArnLike":{"aws:PrincipalArn":"*"}}`, keys{"aws:PrincipalArn": {alice}}, false},
	{"ArnLike all parts", `{"ArnLike":{"aws:PrincipalArn":"*:*:*:*:*:*"}}`, keys{"aws:PrincipalArn": {alice}}, true},
	{"ArnLike resource keeps colons", `{"ArnLike":{"aws:SourceArn":"arn:aws:secretsmanager:*:*:secret:*"}}`, keys{"aws:SourceArn": {secret}}, true},
	{"ArnLike colons in resource", `{"ArnLike":{"aws:SourceArn":"arn:aws:lambda:*:*:function:f:*"}}`, keys{"aws:SourceArn": {"arn:aws:lambda:us-east-1:111122223333:function:f:prod"}}, true},
	{"ArnLike not an arn", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"}}`, keys{"aws:PrincipalArn": {"alice"}}, false},
	{"ArnLike absent", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"}}`, nil, false},
	{"ArnEquals equal", `{"ArnEquals":{"aws:PrincipalArn":"` + alice + `"}}`, keys{"aws:PrincipalArn": {alice}}, true},
	{"ArnEquals different", `{"ArnEquals":{"aws:PrincipalArn":"` + alice + `"}}`, keys{"aws:PrincipalArn": {bob}}, false},
	{"ArnEquals wildcards", `{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`, keys{"aws:PrincipalArn": {bob}}, true},
	{"ArnNotEquals equal", `{"ArnNotEquals":{"aws:PrincipalArn":"` + alice + `"}}`, keys{"aws:PrincipalArn": {alice}}, false},
	{"ArnNotEquals different", `{"ArnNotEquals":{"aws:PrincipalArn":"` + alice + `"}}`, keys{"aws:PrincipalArn": {bob}}, true},
	{"ArnNotEquals absent", `{"ArnNotEquals":{"aws:PrincipalArn":"` + alice + `"}}`, nil, true},
	{"ArnNotLike matching", `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`, keys{"aws:PrincipalArn": {alice}}, false},
	{"ArnNotLike not matching", `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`, keys{"aws:PrincipalArn": {root}}, true},
	{"ArnNotLike absent", `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`, nil, true},

	// Null.
	{"Null true, absent", `{"Null":{"aws:TokenIssueTime":"true"}}`, nil, true},
	{"Null true, present", `{"Null":{"aws:TokenIssueTime":true}}`, keys{"aws:TokenIssueTime": {"2026-03-01T12:00:00Z"}}, false},
	{"Null true, empty", `{"Null":{"aws:TagKeys":true}}`, keys{"aws:TagKeys": {}}, true},
	{"Null false, present", `{"Null":{"aws:TokenIssueTime":false}}`, keys{"aws:TokenIssueTime": {"2026-03-01T12:00:00Z"}}, true},
	{"Null false, absent", `{"Null":{"aws:TokenIssueTime":"False"}}`, nil, false},
	{"Null key case", `{"Null":{"AWS:TOKENISSUETIME":"false"}}`, keys{"aws:TokenIssueTime": {"x"}}, true},

	// IfExists.
	{"StringEqualsIfExists absent", `{"StringEqualsIfExists":{"aws:SourceVpc":"vpc-1"}}`, nil, true},
	{"StringEqualsIfExists equal", `{"StringEqualsIfExists":{"aws:SourceVpc":"vpc-1"}}`, keys{"aws:SourceVpc": {"vpc-1"}}, true},
	{"StringEqualsIfExists different", `{"StringEqualsIfExists":{"aws:SourceVpc":"vpc-1"}}`, keys{"aws:SourceVpc": {"vpc-2"}}, false},
	{"StringNotEqualsIfExists absent", `{"StringNotEqualsIfExists":{"aws:SourceVpc":"vpc-1"}}`, nil, true},
	{"StringNotEqualsIfExists equal", `{"StringNotEqualsIfExists":{"aws:SourceVpc":"vpc-1"}}`, keys{"aws:SourceVpc": {"vpc-1"}}, false},
	{"NumericLessThanIfExists absent", `{"NumericLessThanIfExists":{"aws:MultiFactorAuthAge":3600}}`, nil, true},
	{"NumericLessThanIfExists too old", `{"NumericLessThanIfExists":{"aws:MultiFactorAuthAge":3600}}`, keys{"aws:MultiFactorAuthAge": {"7200"}}, false},
	{"DateLessThanIfExists absent", `{"DateLessThanIfExists":{"aws:CurrentTime":"2026-01-01"}}`, nil, true},
	{"BoolIfExists absent", `{"BoolIfExists":{"aws:MultiFactorAuthPresent":true}}`, nil, true},
	{"BoolIfExists false", `{"BoolIfExists":{"aws:MultiFactorAuthPresent":true}}`, keys{"aws:MultiFactorAuthPresent": {"false"}}, false},
	{"IpAddressIfExists absent", `{"IpAddressIfExists":{"aws:SourceIp":"203.0.113.0/24"}}`, nil, true},
	{"IpAddressIfExists outside", `{"IpAddressIfExists":{"aws:SourceIp":"203.0.113.0/24"}}`, keys{"aws:SourceIp": {"192.0.2.1"}}, false},
	{"ArnLikeIfExists absent", `{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:lambda:*:*:function:*"}}`, nil, true},
	{"BinaryEqualsIfExists absent", `{"BinaryEqualsIfExists":{"aws:Binary":"QQ=="}}`, nil, true},
	{"ForAnyValue:StringEqualsIfExists absent", `{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"env"}}`, nil, true},

	// ForAnyValue.
	{"ForAnyValue:StringEquals one", `{"ForAnyValue:StringEquals":{"aws:TagKeys":"env"}}`, keys{"aws:TagKeys": {"env", "team"}}, true},
	{"ForAnyValue:StringEquals none", `{"ForAnyValue:StringEquals":{"aws:TagKeys":["owner","cost"]}}`, keys{"aws:TagKeys": {"env", "team"}}, false},
	{"ForAnyValue:StringEquals absent", `{"ForAnyValue:StringEquals":{"aws:TagKeys":"env"}}`, nil, false},
	{"ForAnyValue:StringEquals empty", `{"ForAnyValue:StringEquals":{"aws:TagKeys":"env"}}`, keys{"aws:TagKeys": {}}, false},
	{"ForAnyValue:StringLike", `{"ForAnyValue:StringLike":{"aws:TagKeys":"te*"}}`, keys{"aws:TagKeys": {"env", "team"}}, true},
	{"ForAnyValue:StringEqualsIgnoreCase", `{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":"ENV"}}`, keys{"aws:TagKeys": {"env"}}, true},
	{"ForAnyValue:StringNotEquals some other", `{"ForAnyValue:StringNotEquals":{"aws:TagKeys":"env"}}`, keys{"aws:TagKeys": {"env", "team"}}, true},
	{"ForAnyValue:StringNotEquals all listed", `{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["env","team"]}}`, keys{"aws:TagKeys": {"env", "team"}}, false},
	{"ForAnyValue:StringNotEquals absent", `{"ForAnyValue:StringNotEquals":{"aws:TagKeys":"env"}}`, nil, false},
	{"ForAnyValue:NumericLessThan", `{"ForAnyValue:NumericLessThan":{"aws:Sizes":10}}`, keys{"aws:Sizes": {"20", "5"}}, true},
	{"ForAnyValue:IpAddress", `{"ForAnyValue:IpAddress":{"aws:Addresses":"10.0.0.0/8"}}`, keys{"aws:Addresses": {"192.0.2.1", "10.0.0.1"}}, true},

	// ForAllValues.
	{"ForAllValues:StringEquals all listed", `{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team","owner"]}}`, keys{"aws:TagKeys": {"env", "team"}}, true},
	{"ForAllValues:StringEquals one unlisted", `{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team","owner"]}}`, keys{"aws:TagKeys": {"env", "cost"}}, false},
	{"ForAllValues:StringEquals absent", `{"ForAllValues:StringEquals":{"aws:TagKeys":"env"}}`, nil, true},
	{"ForAllValues:StringEquals empty", `{"ForAllValues:StringEquals":{"aws:TagKeys":"env"}}`, keys{"aws:TagKeys": {}}, true},
	{"ForAllValues:StringEquals key case", `{"ForAllValues:StringEquals":{"AWS:TAGKEYS":["env","team"]}}`, keys{"aws:tagkeys": {"team"}}, true},
	{"ForAllValues:StringLike", `{"ForAllValues:StringLike":{"aws:TagKeys":["env*","team-?"]}}`, keys{"aws:TagKeys": {"environment", "team-a"}}, true},
	{"ForAllValues:StringLike one unmatched", `{"ForAllValues:StringLike":{"aws:TagKeys":["env*","team-?"]}}`, keys{"aws:TagKeys": {"environment", "team-ab"}}, false},
	{"ForAllValues:StringNotEquals none listed", `{"ForAllValues:StringNotEquals":{"aws:TagKeys":"secret"}}`, keys{"aws:TagKeys": {"env", "team"}}, true},
	{"ForAllValues:StringNotEquals one listed", `{"ForAllValues:StringNotEquals":{"aws:TagKeys":"secret"}}`, keys{"aws:TagKeys": {"env", "secret"}}, false},
	{"ForAllValues:StringNotEquals absent", `{"ForAllValues:StringNotEquals":{"aws:TagKeys":"secret"}}`, nil, true},
	{"ForAllValues:NumericLessThan", `{"ForAllValues:NumericLessThan":{"aws:Sizes":10}}`, keys{"aws:Sizes": {"1", "9"}}, true},
	{"ForAllValues:NumericLessThan one not a number", `{"ForAllValues:NumericLessThan":{"aws:Sizes":10}}`, keys{"aws:Sizes": {"1", "x"}}, false},

	// Several tests.
	{"and, both pass", `{"StringEquals":{"aws:username":"alice"},"Bool":{"aws:SecureTransport":"true"}}`, keys{"aws:username": {"alice"}, "aws:SecureTransport": {"true"}}, true},
	{"and, one fails", `{"StringEquals":{"aws:username":"alice"},"Bool":{"aws:SecureTransport":"true"}}`, keys{"aws:username": {"alice"}, "aws:SecureTransport": {"false"}}, false},
	{"and within an operator", `{"StringEquals":{"aws:username":"alice","aws:PrincipalTag/team":"blue"}}`, keys{"aws:username": {"alice"}, "aws:PrincipalTag/team": {"red"}}, false},
	{"empty condition", `{}`, nil, true},

	// Policy variables in condition values.
	{"variable equal", `{"StringEquals":{"secretsmanager:ResourceTag/owner":"${aws:username}"}}`, keys{"aws:username": {"alice"}, "secretsmanager:ResourceTag/owner": {"alice"}}, true},
	{"variable different", `{"StringEquals":{"secretsmanager:ResourceTag/owner":"${aws:username}"}}`, keys{"aws:username": {"alice"}, "secretsmanager:ResourceTag/owner": {"bob"}}, false},
	{"variable key case", `{"StringEquals":{"secretsmanager:ResourceTag/owner":"${AWS:UserName}"}}`, keys{"aws:username": {"alice"}, "secretsmanager:ResourceTag/owner": {"alice"}}, true},
	{"variable in text", `{"StringEquals":{"aws:PrincipalTag/home":"home/${aws:username}/x"}}`, keys{"aws:username": {"alice"}, "aws:PrincipalTag/home": {"home/alice/x"}}, true},
	{"two variables", `{"StringEquals":{"aws:PrincipalTag/id":"${aws:username}@${aws:PrincipalAccount}"}}`, keys{"aws:username": {"alice"}, "aws:PrincipalAccount": {account}, "aws:PrincipalTag/id": {"alice@" + account}}, true},
	{"variable unresolved", `{"StringEquals":{"secretsmanager:ResourceTag/owner":"${aws:username}"}}`, keys{"secretsmanager:ResourceTag/owner": {"${aws:username}"}}, false},
	{"variable unresolved, other value", `{"StringEquals":{"secretsmanager:ResourceTag/owner":["${aws:username}","admin"]}}`, keys{"secretsmanager:ResourceTag/owner": {"admin"}}, true},
	{"variable unresolved, negated", `{"StringNotEquals":{"secretsmanager:ResourceTag/owner":"${aws:username}"}}`, keys{"secretsmanager:ResourceTag/owner": {"alice"}}, true},
	{"variable multi-valued", `{"StringEquals":{"aws:PrincipalTag/k":"${aws:TagKeys}"}}`, keys{"aws:TagKeys": {"a", "b"}, "aws:PrincipalTag/k": {"a"}}, false},
	{"variable default", `{"StringEquals":{"aws:PrincipalTag/team":"${aws:PrincipalTag/dept, 'company-wide'}"}}`, keys{"aws:PrincipalTag/team": {"company-wide"}}, true},
	{"variable default unused", `{"StringEquals":{"aws:PrincipalTag/team":"${aws:PrincipalTag/dept, 'company-wide'}"}}`, keys{"aws:PrincipalTag/dept": {"ops"}, "aws:PrincipalTag/team": {"ops"}}, true},
	{"variable bad default", `{"StringEquals":{"aws:PrincipalTag/team":"${aws:PrincipalTag/dept, company}"}}`, keys{"aws:PrincipalTag/team": {"company"}}, false},
	{"variable IgnoreCase", `{"StringEqualsIgnoreCase":{"aws:PrincipalTag/owner":"${aws:username}"}}`, keys{"aws:username": {"Alice"}, "aws:PrincipalTag/owner": {"ALICE"}}, true},
	{"variable StringLike", `{"StringLike":{"secretsmanager:SecretId":"${aws:username}/*"}}`, keys{"aws:username": {"alice"}, "secretsmanager:SecretId": {"alice/db"}}, true},
	{"variable StringLike other user", `{"StringLike":{"secretsmanager:SecretId":"${aws:username}/*"}}`, keys{"aws:username": {"alice"}, "secretsmanager:SecretId": {"bob/db"}}, false},
	{"variable value is literal", `{"StringLike":{"aws:PrincipalTag/x":"${aws:username}"}}`, keys{"aws:username": {"a*"}, "aws:PrincipalTag/x": {"abc"}}, false},
	{"variable value is literal, equal", `{"StringLike":{"aws:PrincipalTag/x":"${aws:username}"}}`, keys{"aws:username": {`a*?\`}, "aws:PrincipalTag/x": {`a*?\`}}, true},
	{"variable and backslash", `{"StringLike":{"aws:PrincipalTag/x":"a\\*${aws:username}"}}`, keys{"aws:username": {"b"}, "aws:PrincipalTag/x": {`a\xyzb`}}, true},
	{"literal star", `{"StringLike":{"aws:PrincipalTag/x":"a${*}"}}`, keys{"aws:PrincipalTag/x": {"a*"}}, true},
	{"literal star is not a wildcard", `{"StringLike":{"aws:PrincipalTag/x":"a${*}"}}`, keys{"aws:PrincipalTag/x": {"ab"}}, false},
	{"literal question", `{"StringLike":{"aws:PrincipalTag/x":"a${?}"}}`, keys{"aws:PrincipalTag/x": {"a?"}}, true},
	{"literal question is not a wildcard", `{"StringLike":{"aws:PrincipalTag/x":"a${?}"}}`, keys{"aws:PrincipalTag/x": {"ab"}}, false},
	{"literal dollar", `{"StringEquals":{"aws:PrincipalTag/x":"${$}{aws:username}"}}`, keys{"aws:username": {"alice"}, "aws:PrincipalTag/x": {"${aws:username}"}}, true},
	{"literal star in StringEquals", `{"StringEquals":{"aws:PrincipalTag/x":"${*}"}}`, keys{"aws:PrincipalTag/x": {"*"}}, true},
	{"unterminated variable", `{"StringEquals":{"aws:PrincipalTag/x":"${aws:username"}}`, keys{"aws:username": {"alice"}, "aws:PrincipalTag/x": {"${aws:username"}}, true},
	{"variable ArnEquals", `{"ArnEquals":{"aws:SourceArn":"${aws:PrincipalArn}"}}`, keys{"aws:PrincipalArn": {alice}, "aws:SourceArn": {alice}}, true},
	{"variable ArnLike", `{"ArnLike":{"aws:SourceArn":"arn:aws:iam::${aws:PrincipalAccount}:user/*"}}`, keys{"aws:PrincipalAccount": {account}, "aws:SourceArn": {alice}}, true},
	{"variable ArnLike other account", `{"ArnLike":{"aws:SourceArn":"arn:aws:iam::${aws:PrincipalAccount}:user/*"}}`, keys{"aws:PrincipalAccount": {"444455556666"}, "aws:SourceArn": {alice}}, false},
	{"variable ForAllValues", `{"ForAllValues:StringLike":{"aws:TagKeys":"${aws:username}-*"}}`, keys{"aws:username": {"alice"}, "aws:TagKeys": {"alice-a", "alice-b"}}, true},
}

func TestEvaluateCondition(t *testing.T) {
	for _, tt := range conditionTests {
		t.Run(tt.name, func(t *testing.T) {
			doc := stmt(`"Effect":"Allow","Action":"*","Resource":"*","Condition":` + tt.cond)
			r := &policy.Request{Action: getValue, Resource: secret, Principal: alice, Context: tt.keys.context()}
			if got := applies(t, doc, r); got != tt.want {
				t.Errorf("applies = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluateVersion2008(t *testing.T) {
	k := keys{"aws:username": {"alice"}, "aws:PrincipalTag/x": {"${aws:username}"}}
	tests := []struct {
		name    string
		version string
		cond    string
		want    bool
	}{
		{"2012 substitutes", policy.Version2012, `{"StringEquals":{"aws:username":"${aws:username}"}}`, true},
		{"2008 does not", policy.Version2008, `{"StringEquals":{"aws:username":"${aws:username}"}}`, false},
		{"2008 literal", policy.Version2008, `{"StringEquals":{"aws:PrincipalTag/x":"${aws:username}"}}`, true},
		{"2008 wildcards stay", policy.Version2008, `{"StringLike":{"aws:PrincipalTag/x":"${*}"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"Version":"` + tt.version + `","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":` + tt.cond + `}}`
			r := &policy.Request{Action: getValue, Resource: secret, Principal: alice, Context: k.context()}
			if got := applies(t, doc, r); got != tt.want {
				t.Errorf("applies = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluateResourceVariables(t *testing.T) {
	const own = "arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:username}/*"
	tests := []struct {
		name     string
		version  string
		element  string
		pattern  string
		keys     keys
		resource string
		want     bool
	}{
		{"own secret", policy.Version2012, "Resource", own, keys{"aws:username": {"alice"}}, secret, true},
		{"other user's secret", policy.Version2012, "Resource", own, keys{"aws:username": {"bob"}}, secret, false},
		{"variable key case", policy.Version2012, "Resource", "arn:aws:secretsmanager:us-east-1:111122223333:secret:${AWS:USERNAME}/*", keys{"aws:username": {"alice"}}, secret, true},
		{"no user name", policy.Version2012, "Resource", own, nil, secret, false},
		{"user name with a star", policy.Version2012, "Resource", own, keys{"aws:username": {"*"}}, secret, false},
		{"two user names", policy.Version2012, "Resource", own, keys{"aws:username": {"alice", "bob"}}, secret, false},
		{"request for star", policy.Version2012, "Resource", own, keys{"aws:username": {"alice"}}, "*", false},
		{"not resource, own", policy.Version2012, "NotResource", own, keys{"aws:username": {"alice"}}, secret, false},
		{"not resource, other", policy.Version2012, "NotResource", own, keys{"aws:username": {"bob"}}, secret, true},
		{"not resource, unresolved", policy.Version2012, "NotResource", own, nil, secret, true},
		{"user id", policy.Version2012, "Resource", "arn:aws:secretsmanager:*:*:secret:${aws:userid}-*", keys{"aws:userid": {"AIDAEXAMPLE"}},
			"arn:aws:secretsmanager:us-east-1:111122223333:secret:AIDAEXAMPLE-db", true},
		{"2008 is literal", policy.Version2008, "Resource", own, keys{"aws:username": {"alice"}}, secret, false},
		{"2008 literal match", policy.Version2008, "Resource", own, keys{"aws:username": {"alice"}},
			"arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:username}/db", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"Version":"` + tt.version + `","Statement":{"Effect":"Allow","Action":"*","` + tt.element + `":"` + tt.pattern + `"}}`
			r := &policy.Request{Action: getValue, Resource: tt.resource, Principal: alice, Context: tt.keys.context()}
			if got := applies(t, doc, r); got != tt.want {
				t.Errorf("applies = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluateDecision(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Read","Effect":"Allow","Action":"secretsmanager:Get*","Resource":"*"},
		{"Sid":"ReadAll","Effect":"Allow","Action":"secretsmanager:*","Resource":"*"},
		{"Sid":"NoProd","Effect":"Deny","Action":"*","Resource":"arn:aws:secretsmanager:*:*:secret:prod/*"},
		{"Sid":"Describe","Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}]}`
	p, err := policy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	prod := "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf"
	tests := []struct {
		action, resource string
		want             policy.Decision
		sid              string
	}{
		{getValue, secret, policy.DecisionAllow, "Read"},
		{"secretsmanager:DescribeSecret", secret, policy.DecisionAllow, "ReadAll"},
		{getValue, prod, policy.DecisionDeny, "NoProd"},
		{"secretsmanager:DescribeSecret", prod, policy.DecisionDeny, "NoProd"},
		{"rotor:CreateUser", "*", policy.NotApplicable, ""},
	}
	for _, tt := range tests {
		m := p.Evaluate(&policy.Request{Action: tt.action, Resource: tt.resource, Principal: alice})
		sid := ""
		if m.Statement != nil {
			sid = m.Statement.Sid
			if !statementOf(p, m.Statement) {
				t.Errorf("%s on %s: the statement is not one of the policy's", tt.action, tt.resource)
			}
		}
		if m.Decision != tt.want || sid != tt.sid {
			t.Errorf("%s on %s = %d by %q, want %d by %q", tt.action, tt.resource, m.Decision, sid, tt.want, tt.sid)
		}
	}
}

// statementOf reports whether s points into p's statements.
func statementOf(p *policy.Policy, s *policy.Statement) bool {
	for i := range p.Statements {
		if s == &p.Statements[i] {
			return true
		}
	}
	return false
}

func TestAuthorize(t *testing.T) {
	allowRead := stmt(`"Sid":"IdentityAllow","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"`)
	denyRead := stmt(`"Sid":"IdentityDeny","Effect":"Deny","Action":"secretsmanager:Get*","Resource":"*"`)
	allowOther := stmt(`"Sid":"Other","Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"`)
	allowOwn := `{"Version":"2012-10-17","Statement":{"Sid":"Own","Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:*:*:secret:${aws:username}/*"}}`
	resource := func(sid, effect, principal string) string {
		return stmt(`"Sid":"` + sid + `","Effect":"` + effect + `",` + principal + `,"Action":"secretsmanager:GetSecretValue","Resource":"*"`)
	}
	resAllowAlice := resource("ResourceAllow", "Allow", `"Principal":{"AWS":"`+alice+`"}`)
	resDenyAlice := resource("ResourceDeny", "Deny", `"Principal":{"AWS":"`+alice+`"}`)
	resAllowAccount := resource("Account", "Allow", `"Principal":{"AWS":"`+account+`"}`)
	resAllowRoot := resource("Root", "Allow", `"Principal":{"AWS":"`+root+`"}`)
	resAllowAnyone := resource("Anyone", "Allow", `"Principal":"*"`)
	resDenyOthers := resource("OnlyAlice", "Deny", `"NotPrincipal":{"AWS":"`+alice+`"}`)
	resDenyHTTP := stmt(`"Sid":"TLS","Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}`)

	const (
		identityDeny = "with an explicit deny in an identity-based policy"
		resourceDeny = "with an explicit deny in a resource-based policy"
		noAllow      = "because no identity-based policy allows the secretsmanager:GetSecretValue action"
	)
	tests := []struct {
		name     string
		identity []string
		resource string
		caller   string
		keys     keys
		allowed  bool
		reason   string
		sid      string
	}{
		{"nothing", nil, "", alice, nil, false, noAllow, ""},
		{"identity allows", []string{allowRead}, "", alice, nil, true, "", "IdentityAllow"},
		{"identity allows another action", []string{allowOther}, "", alice, nil, false, noAllow, ""},
		{"identity allows and denies", []string{allowRead, denyRead}, "", alice, nil, false, identityDeny, "IdentityDeny"},
		{"identity denies first", []string{denyRead, allowRead}, "", alice, nil, false, identityDeny, "IdentityDeny"},
		{"first allowing identity policy decides", []string{allowOther, allowRead, allowOwn}, "", alice, nil, true, "", "IdentityAllow"},
		{"identity allow, resource deny", []string{allowRead}, resDenyAlice, alice, nil, false, resourceDeny, "ResourceDeny"},
		{"identity deny, resource allow", []string{denyRead}, resAllowAlice, alice, nil, false, identityDeny, "IdentityDeny"},
		{"both deny", []string{denyRead}, resDenyAlice, alice, nil, false, identityDeny, "IdentityDeny"},
		{"resource allows the user", nil, resAllowAlice, alice, nil, true, "", "ResourceAllow"},
		{"resource allows another user", nil, resAllowAlice, bob, nil, false, noAllow, ""},
		{"identity allow decides before resource allow", []string{allowRead}, resAllowAlice, alice, nil, true, "", "IdentityAllow"},
		{"resource names the account id, user", nil, resAllowAccount, alice, nil, false, noAllow, ""},
		{"resource names the account id, root", nil, resAllowAccount, root, nil, true, "", "Account"},
		{"resource names the account id, identity allows", []string{allowRead}, resAllowAccount, alice, nil, true, "", "IdentityAllow"},
		{"resource names the root arn, user", nil, resAllowRoot, alice, nil, false, noAllow, ""},
		{"resource names the root arn, root", nil, resAllowRoot, root, nil, true, "", "Root"},
		{"resource allows anyone", nil, resAllowAnyone, bob, nil, true, "", "Anyone"},
		{"resource allows anyone, identity denies", []string{denyRead}, resAllowAnyone, bob, nil, false, identityDeny, "IdentityDeny"},
		{"not principal deny, named user", []string{allowRead}, resDenyOthers, alice, nil, true, "", "IdentityAllow"},
		{"not principal deny, other user", []string{allowRead}, resDenyOthers, bob, nil, false, resourceDeny, "OnlyAlice"},
		{"resource condition deny applies", []string{allowRead}, resDenyHTTP, alice, keys{"aws:SecureTransport": {"false"}}, false, resourceDeny, "TLS"},
		{"resource condition deny does not apply", []string{allowRead}, resDenyHTTP, alice, keys{"aws:SecureTransport": {"true"}}, true, "", "IdentityAllow"},
		{"resource condition deny, key absent", []string{allowRead}, resDenyHTTP, alice, nil, true, "", "IdentityAllow"},
		{"policy variable in identity policy", []string{allowOwn}, "", alice, keys{"aws:username": {"alice"}}, true, "", "Own"},
		{"policy variable, other user", []string{allowOwn}, "", bob, keys{"aws:username": {"bob"}}, false, noAllow, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var identity []*policy.Policy
			for _, doc := range tt.identity {
				p, err := policy.ParseIdentityPolicy(doc)
				if err != nil {
					t.Fatal(err)
				}
				identity = append(identity, p)
			}
			var res *policy.Policy
			if tt.resource != "" {
				var err error
				if res, err = policy.ParseResourcePolicy(tt.resource); err != nil {
					t.Fatal(err)
				}
			}
			r := &policy.Request{Action: getValue, Resource: secret, Principal: tt.caller, Context: tt.keys.context()}
			got := policy.Authorize(r, identity, res)
			sid := ""
			if got.Deciding != nil {
				sid = got.Deciding.Sid
			}
			if got.Allowed != tt.allowed || got.Reason != tt.reason || sid != tt.sid {
				t.Errorf("Authorize = {%v %q %q}, want {%v %q %q}", got.Allowed, got.Reason, sid, tt.allowed, tt.reason, tt.sid)
			}
		})
	}
}

func TestAuthorizeEdges(t *testing.T) {
	p, err := policy.ParseIdentityPolicy(stmt(`"Effect":"Allow","Action":"secretsmanager:*","Resource":"arn:aws:secretsmanager:*:*:secret:*"`))
	if err != nil {
		t.Fatal(err)
	}
	all, err := policy.ParseIdentityPolicy(stmt(`"Sid":"All","Effect":"Allow","Action":"secretsmanager:ListSecrets","Resource":"*"`))
	if err != nil {
		t.Fatal(err)
	}
	list := &policy.Request{Action: "SecretsManager:listSecrets", Resource: "*", Principal: alice}
	got := policy.Authorize(list, []*policy.Policy{nil, p}, nil)
	if want := "because no identity-based policy allows the SecretsManager:listSecrets action"; got.Allowed || got.Reason != want || got.Deciding != nil {
		t.Errorf("ListSecrets with ARN-only policy = %+v, want reason %q", got, want)
	}
	got = policy.Authorize(list, []*policy.Policy{p, nil, all}, nil)
	if !got.Allowed || got.Reason != "" || got.Deciding == nil || got.Deciding.Sid != "All" {
		t.Errorf("ListSecrets with a * policy = %+v, want allowed by All", got)
	}
}

// benchPolicy is a typical identity policy: three statements, two
// conditions.
const benchPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReadTeamSecrets",
      "Effect": "Allow",
      "Action": ["secretsmanager:GetSecretValue", "secretsmanager:Describe*"],
      "Resource": "arn:aws:secretsmanager:us-east-1:111122223333:secret:*",
      "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "payments"}}
    },
    {
      "Sid": "List",
      "Effect": "Allow",
      "Action": "secretsmanager:ListSecrets",
      "Resource": "*"
    },
    {
      "Sid": "DenyOutsideOffice",
      "Effect": "Deny",
      "Action": "*",
      "Resource": "*",
      "Condition": {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}
    }
  ]
}`

func benchRequest() *policy.Request {
	k := keys{
		"aws:SourceIp":                     {"203.0.113.17"},
		"aws:CurrentTime":                  {"2026-03-01T12:00:00Z"},
		"aws:SecureTransport":              {"true"},
		"aws:username":                     {"alice"},
		"aws:PrincipalArn":                 {alice},
		"secretsmanager:ResourceTag/team":  {"payments"},
		"secretsmanager:ResourceTag/owner": {"alice"},
	}
	return &policy.Request{Action: getValue, Resource: secret, Principal: alice, Context: k.context()}
}

func TestAuthorizeAllocations(t *testing.T) {
	conditions := stmt(`"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:*:*:secret:alice/*","Condition":{
		"DateLessThan":{"aws:CurrentTime":["2026-12-31T23:59:59Z",1800000000]},
		"NumericLessThanIfExists":{"aws:MultiFactorAuthAge":3600},
		"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"},
		"Bool":{"aws:SecureTransport":"true"},
		"ForAllValues:StringLike":{"aws:TagKeys":["env","team-*"]},
		"StringEqualsIgnoreCase":{"aws:PrincipalTag/Team":"PAYMENTS"}}`)
	r := benchRequest()
	r.Context.Set("aws:TagKeys", "env", "team-a")
	r.Context.Set("aws:PrincipalTag/team", "payments")
	for _, doc := range []string{benchPolicy, conditions} {
		p, err := policy.ParseIdentityPolicy(doc)
		if err != nil {
			t.Fatal(err)
		}
		identity := []*policy.Policy{p}
		if got := policy.Authorize(r, identity, nil); !got.Allowed {
			t.Fatalf("Authorize = %+v\n%s", got, doc)
		}
		if n := testing.AllocsPerRun(100, func() { policy.Authorize(r, identity, nil) }); n != 0 {
			t.Errorf("Authorize allocates %v times per call, want 0\n%s", n, doc)
		}
	}
}

func BenchmarkAuthorize(b *testing.B) {
	p, err := policy.ParseIdentityPolicy(benchPolicy)
	if err != nil {
		b.Fatal(err)
	}
	r := benchRequest()
	identity := []*policy.Policy{p}
	b.ReportAllocs()
	for b.Loop() {
		if !policy.Authorize(r, identity, nil).Allowed {
			b.Fatal("denied")
		}
	}
}
