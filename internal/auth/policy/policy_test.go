package policy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rotor-secrets/rotor/internal/auth/policy"
)

type parser struct {
	name  string
	parse func(string) (*policy.Policy, error)
}

var (
	anyKind      = parser{"Parse", policy.Parse}
	resourceKind = parser{"ParseResourcePolicy", policy.ParseResourcePolicy}
	identityKind = parser{"ParseIdentityPolicy", policy.ParseIdentityPolicy}
)

// stmt wraps one statement's members in a 2012-10-17 policy.
func stmt(members string) string {
	return `{"Version":"2012-10-17","Statement":[{` + members + `}]}`
}

// res is a resource-policy statement granting GetSecretValue to account
// 123456789012, plus extra members.
func res(extra string) string {
	m := `"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"`
	if extra != "" {
		m += "," + extra
	}
	return stmt(m)
}

// cond is a resource-policy statement with the given Condition value.
func cond(c string) string { return res(`"Condition":` + c) }

// manyKeys is a Condition operator block of n keys a:0…a:n-1 and then a
// repeat of a:1, to reach the map-indexed path of duplicate detection.
func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString(`{"StringEquals":{`)
	for i := range n {
		fmt.Fprintf(&b, `"a:%d":"v",`, i)
	}
	b.WriteString(`"a:1":"w"}}`)
	return b.String()
}

// pad makes doc exactly n characters long with trailing JSON whitespace.
func pad(doc string, n int) string { return doc + strings.Repeat(" ", n-len(doc)) }

var validDocs = []struct {
	name string
	p    parser
	doc  string
}{
	{"aws documentation example", resourceKind, `{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:role/MyRole"},
    "Action": "secretsmanager:GetSecretValue",
    "Resource": "*"
  }]
}`},
	{"statement as an object", resourceKind, `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}`},
	{"version 2008", resourceKind, `{"Version":"2008-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}`},
	{"no version", resourceKind, `{"Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}`},
	{"id and sids", resourceKind, `{"Id":"my policy","Statement":[
		{"Sid":"A","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"},
		{"Sid":"B","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"},
		{"Sid":"","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"},
		{"Sid":"","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}`},
	{"exactly 20480 characters", resourceKind, pad(res(""), 20480)},
	{"principal types", resourceKind, stmt(`"Effect":"Allow","Action":"secretsmanager:*","Resource":"*","Principal":{
		"AWS":["123456789012","arn:aws:iam::123456789012:user/alice","arn:aws:sts::123456789012:assumed-role/r/s"],
		"Service":"lambda.amazonaws.com","Federated":"cognito-identity.amazonaws.com",
		"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}`)},
	{"not principal", resourceKind, stmt(`"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"*","Resource":"*"`)},
	{"action wildcards", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":["secretsmanager:Get*","secretsmanager:Describe?ecret","s?cretsmanager:*","*","execute-api:Invoke","secretsmanager:list_things"],"Resource":"*"`)},
	{"not action, not resource", resourceKind, stmt(`"Effect":"Deny","Principal":"*","NotAction":"secretsmanager:Get*","NotResource":["arn:aws:secretsmanager:*:*:secret:prod/*","arn:aws:s3:::bucket/${aws:username}"]`)},
	{"empty condition", resourceKind, res(`"Condition":{}`)},
	{"empty operator block", resourceKind, cond(`{"StringEquals":{}}`)},
	{"string operators", resourceKind, cond(`{"StringEquals":{"aws:PrincipalTag/team":"a"},"StringNotEquals":{"aws:userid":["x","y"]},
		"StringEqualsIgnoreCase":{"aws:username":"A"},"StringNotEqualsIgnoreCase":{"aws:username":"B"},
		"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/${aws:username}"},"StringNotLike":{"aws:userid":"*:x"}}`)},
	{"numeric operators", resourceKind, cond(`{"NumericEquals":{"aws:MultiFactorAuthAge":3600},"NumericNotEquals":{"aws:MultiFactorAuthAge":"1.5"},
		"NumericLessThan":{"aws:MultiFactorAuthAge":[1,2e3]},"NumericLessThanEquals":{"aws:MultiFactorAuthAge":-1},
		"NumericGreaterThan":{"aws:MultiFactorAuthAge":0},"NumericGreaterThanEquals":{"aws:MultiFactorAuthAge":"10"}}`)},
	{"date operators", resourceKind, cond(`{"DateEquals":{"aws:CurrentTime":"2026-01-31T23:59:59Z"},"DateNotEquals":{"aws:CurrentTime":"2026-01-31"},
		"DateLessThan":{"aws:CurrentTime":"2026-01-31T23:59:59.123+02:00"},"DateLessThanEquals":{"aws:EpochTime":1767225600},
		"DateGreaterThan":{"aws:CurrentTime":"2026-01-31T23:59"},"DateGreaterThanEquals":{"aws:CurrentTime":"2026-01-31T23:59:59"}}`)},
	{"bool, null, binary", resourceKind, cond(`{"Bool":{"aws:SecureTransport":true,"aws:MultiFactorAuthPresent":"False"},
		"Null":{"aws:TokenIssueTime":"true"},"BinaryEquals":{"aws:Binary":"QmluYXJ5VmFsdWU="}}`)},
	{"ip operators", resourceKind, cond(`{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32","198.51.100.7"]},"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`)},
	{"arn operators", resourceKind, cond(`{"ArnEquals":{"aws:SourceArn":"arn:aws:lambda:us-east-1:123456789012:function:f"},
		"ArnLike":{"aws:SourceArn":"arn:aws:lambda:*:123456789012:function:*"},
		"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:root"},"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:root"}}`)},
	{"set qualifiers and IfExists", resourceKind, cond(`{"ForAnyValue:StringLike":{"aws:TagKeys":["a*","b*"]},
		"ForAllValues:StringEquals":{"aws:TagKeys":"a"},"StringEqualsIfExists":{"aws:SourceVpc":"vpc-1"},
		"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":"c"},"Null":{"aws:TagKeys":false},"ForAllValues:Null":{"aws:TagKeys":"false"}}`)},
	{"identity policy", identityKind, stmt(`"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/*"`)},
	{"any kind without resource or principal", anyKind, stmt(`"Effect":"Allow","Action":"*"`)},
	{"any kind with principal", anyKind, res("")},
	{"unicode and escapes", resourceKind, stmt(`"Sid":"caf\u00e9 ☕","Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/ü":"<&>"}}`)},
}

var invalidDocs = []struct {
	name string
	p    parser
	doc  string
	msg  string // a substring of the message
}{
	// The document.
	{"empty", resourceKind, "", "policy is empty"},
	{"too long", resourceKind, pad(res(""), 20481), "20481 characters long; the limit is 20480"},
	{"invalid utf-8", resourceKind, res(`"Sid":"` + "\xff" + `"`), "not valid UTF-8"},
	{"not json", resourceKind, `{"Statement": [}`, "not valid JSON"},
	{"truncated", resourceKind, `{"Statement": [`, "ends before its last value"},
	{"array", resourceKind, `[{"Effect":"Allow"}]`, "must be a JSON object, not an array"},
	{"string", resourceKind, `"policy"`, "must be a JSON object, not a string"},
	{"trailing data", resourceKind, res("") + `{}`, "more text after its JSON object"},
	{"trailing garbage", resourceKind, res("") + `x`, "more text after"},
	{"too deep", anyKind, `{"Statement":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "nests JSON more than 16 levels"},
	{"unknown top-level key", resourceKind, `{"Statement":[],"Extra":1}`, `policy has the unknown key "Extra"; allowed keys are Version, Id, Statement`},
	{"top-level key case", resourceKind, `{"statement":[]}`, `did you mean "Statement"?`},
	{"duplicate top-level key", resourceKind, `{"Version":"2012-10-17","Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}`, `policy has the key "Version" twice`},
	{"bad version", resourceKind, `{"Version":"2012-10-18","Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}`, `Version must be "2012-10-17" or "2008-10-17", not "2012-10-18"`},
	{"version number", resourceKind, `{"Version":2012,"Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}`, "Version must be a string, not a number"},
	{"id not string", resourceKind, `{"Id":1,"Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}`, "Id must be a string"},
	{"no statement", resourceKind, `{"Version":"2012-10-17"}`, "policy has no Statement"},
	{"empty statement array", resourceKind, `{"Statement":[]}`, "empty array; it needs at least one statement"},
	{"statement string", resourceKind, `{"Statement":"Allow"}`, "Statement must be an object or an array of objects, not a string"},
	{"statement element not object", resourceKind, `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"},[]]}`, "statement 2 must be an object, not an array"},
	{"duplicate sid", resourceKind, `{"Statement":[{"Sid":"A","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}`, `statement 2: Sid "A" is already used by statement 1`},
	{"sid not string", resourceKind, res(`"Sid":1`), "statement 1: Sid must be a string, not a number"},

	// Statement keys.
	{"unknown statement key", resourceKind, res(`"Actions":"x"`), `statement 1 has the unknown key "Actions"; allowed keys are Sid, Effect,`},
	{"statement key case", resourceKind, res(`"condition":{}`), `did you mean "Condition"?`},
	{"duplicate statement key", resourceKind, res(`"Effect":"Deny"`), `statement 1 has the key "Effect" twice`},
	{"duplicate key names sid", resourceKind, res(`"Sid":"Read","Action":"*"`), `statement 1 (Sid "Read") has the key "Action" twice`},

	// Effect.
	{"no effect", resourceKind, stmt(`"Principal":"*","Action":"*","Resource":"*"`), "statement 1 has no Effect"},
	{"effect case", resourceKind, stmt(`"Effect":"allow","Principal":"*","Action":"*","Resource":"*"`), `Effect must be "Allow" or "Deny", not "allow"`},
	{"effect bool", resourceKind, stmt(`"Effect":true,"Principal":"*","Action":"*","Resource":"*"`), "Effect must be the string"},

	// Action.
	{"no action", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Resource":"*"`), "has no Action or NotAction"},
	{"action and not action", resourceKind, res(`"NotAction":"secretsmanager:DeleteSecret"`), "has both Action and NotAction"},
	{"empty action array", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"`), "Action is an empty array"},
	{"empty action", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":"","Resource":"*"`), "Action is an empty string"},
	{"action number item", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":["a:b",1],"Resource":"*"`), "Action must hold only strings, but item 2 is a number"},
	{"action object", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":{},"Resource":"*"`), "Action must be a string or an array of strings, not an object"},
	{"action without service", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":"GetSecretValue","Resource":"*"`), `Action "GetSecretValue" must be "*" or service:Action`},
	{"action empty name", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":"secretsmanager:","Resource":"*"`), "bad action name"},
	{"action bad service", resourceKind, stmt(`"Effect":"Allow","Principal":"*","NotAction":"secrets manager:Get","Resource":"*"`), `NotAction "secrets manager:Get" has a bad service prefix`},
	{"action bad name", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":"secretsmanager:Get:Secret","Resource":"*"`), "bad action name"},

	// Resource.
	{"resource policy without resource", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":"*"`), "has no Resource or NotResource"},
	{"identity policy without resource", identityKind, stmt(`"Effect":"Allow","Action":"*"`), "has no Resource or NotResource"},
	{"resource and not resource", resourceKind, res(`"NotResource":"*"`), "has both Resource and NotResource"},
	{"resource not arn", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":"*","Resource":"my-secret"`), `Resource "my-secret" must be "*" or an ARN`},
	{"resource short arn", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:secretsmanager"`), "must be \"*\" or an ARN"},
	{"resource bool", resourceKind, stmt(`"Effect":"Allow","Principal":"*","Action":"*","Resource":true`), "Resource must be a string or an array of strings, not a boolean"},

	// Principal.
	{"resource policy without principal", resourceKind, stmt(`"Effect":"Allow","Action":"*","Resource":"*"`), "has no Principal or NotPrincipal"},
	{"identity policy with principal", identityKind, res(""), "an identity policy cannot have Principal"},
	{"identity policy with not principal", identityKind, stmt(`"Effect":"Deny","NotPrincipal":"*","Action":"*","Resource":"*"`), "an identity policy cannot have NotPrincipal"},
	{"principal and not principal", resourceKind, res(`"NotPrincipal":"*"`), "has both Principal and NotPrincipal"},
	{"principal string", resourceKind, stmt(`"Effect":"Allow","Principal":"123456789012","Action":"*","Resource":"*"`), `Principal must be "*" or an object such as {"AWS": "arn:aws:iam::123456789012:root"}, not the string "123456789012"`},
	{"principal array", resourceKind, stmt(`"Effect":"Allow","Principal":["*"],"Action":"*","Resource":"*"`), "not an array"},
	{"principal empty object", resourceKind, stmt(`"Effect":"Allow","Principal":{},"Action":"*","Resource":"*"`), "Principal is an empty object"},
	{"principal unknown type", resourceKind, stmt(`"Effect":"Allow","Principal":{"User":"x"},"Action":"*","Resource":"*"`), `statement 1: Principal has the unknown key "User"; allowed keys are AWS, Service, Federated, CanonicalUser`},
	{"principal type case", resourceKind, stmt(`"Effect":"Allow","Principal":{"aws":"*"},"Action":"*","Resource":"*"`), `did you mean "AWS"?`},
	{"principal duplicate type", resourceKind, stmt(`"Effect":"Allow","Principal":{"AWS":"*","AWS":"123456789012"},"Action":"*","Resource":"*"`), `Principal has the key "AWS" twice`},
	{"principal empty list", resourceKind, stmt(`"Effect":"Allow","Principal":{"Service":[]},"Action":"*","Resource":"*"`), "Principal Service is an empty array"},
	{"principal bad aws", resourceKind, stmt(`"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"*","Resource":"*"`), `Principal AWS "alice" must be "*", a 12-digit account id or an ARN`},
	{"principal short account", resourceKind, stmt(`"Effect":"Allow","Principal":{"AWS":"12345678901"},"Action":"*","Resource":"*"`), "12-digit account id"},
	{"principal wildcard arn", resourceKind, stmt(`"Effect":"Allow","NotPrincipal":{"AWS":["123456789012","arn:aws:iam::*:root"]},"Action":"*","Resource":"*"`), `NotPrincipal AWS "arn:aws:iam::*:root" has a wildcard`},

	// Condition.
	{"condition string", resourceKind, cond(`"x"`), "Condition must be an object of operators"},
	{"condition unknown operator", resourceKind, cond(`{"StringEqual":{"aws:SourceIp":"x"}}`), `Condition has the unknown operator "StringEqual"`},
	{"condition operator case", resourceKind, cond(`{"stringEqualsIfExists":{"aws:SourceVpc":"x"}}`), `did you mean "StringEqualsIfExists"?`},
	{"condition bad prefix", resourceKind, cond(`{"ForSomeValues:StringEquals":{"aws:TagKeys":"x"}}`), "the only prefixes are ForAnyValue: and ForAllValues:"},
	{"condition prefix case", resourceKind, cond(`{"forAnyValue:StringEquals":{"aws:TagKeys":"x"}}`), "the only prefixes"},
	{"null if exists", resourceKind, cond(`{"NullIfExists":{"aws:TagKeys":"true"}}`), "Null cannot take IfExists"},
	{"if exists twice", resourceKind, cond(`{"StringEqualsIfExistsIfExists":{"aws:TagKeys":"x"}}`), "unknown operator"},
	{"duplicate operator", resourceKind, cond(`{"StringEquals":{"aws:a":"x"},"StringEquals":{"aws:b":"y"}}`), `Condition has the operator "StringEquals" twice`},
	{"operator block string", resourceKind, cond(`{"StringEquals":"aws:SourceVpc"}`), "Condition StringEquals must be an object of condition keys"},
	{"duplicate condition key", resourceKind, cond(`{"StringEquals":{"aws:SourceVpc":"a","aws:SourceVpc":"b"}}`), `Condition StringEquals has the key "aws:SourceVpc" twice`},
	{"duplicate condition key in a large block", resourceKind, cond(manyKeys(100)), `Condition StringEquals has the key "a:1" twice`},
	{"condition key without prefix", resourceKind, cond(`{"StringEquals":{"SourceVpc":"a"}}`), `condition key "SourceVpc" must be service:name`},
	{"condition key empty name", resourceKind, cond(`{"StringEquals":{"aws:":"a"}}`), "must be service:name"},
	{"condition empty array", resourceKind, cond(`{"StringEquals":{"aws:SourceVpc":[]}}`), "aws:SourceVpc is an empty array"},
	{"condition null", resourceKind, cond(`{"StringEquals":{"aws:SourceVpc":null}}`), "aws:SourceVpc is null"},
	{"condition object value", resourceKind, cond(`{"StringEquals":{"aws:SourceVpc":{}}}`), "aws:SourceVpc is an object"},
	{"condition nested array", resourceKind, cond(`{"StringEquals":{"aws:SourceVpc":["a",["b"]]}}`), "item 2 is an array"},
	{"numeric value", resourceKind, cond(`{"NumericLessThan":{"aws:MultiFactorAuthAge":"ten"}}`), `value "ten" is not a number`},
	{"numeric NaN", resourceKind, cond(`{"NumericLessThan":{"aws:MultiFactorAuthAge":"NaN"}}`), `value "NaN" is not a number`},
	{"numeric hex", resourceKind, cond(`{"NumericLessThan":{"aws:MultiFactorAuthAge":"0x10"}}`), `value "0x10" is not a number`},
	{"date value", resourceKind, cond(`{"DateGreaterThan":{"aws:CurrentTime":"yesterday"}}`), `value "yesterday" is not a date`},
	{"bool value", resourceKind, cond(`{"Bool":{"aws:SecureTransport":"yes"}}`), "must be true or false"},
	{"null value", resourceKind, cond(`{"Null":{"aws:TokenIssueTime":1}}`), "must be true or false"},
	{"ip value", resourceKind, cond(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), "is not an IP address or CIDR block"},
	{"binary value", resourceKind, cond(`{"BinaryEquals":{"aws:Binary":"not base64!"}}`), "is not base64"},
}

func TestParseValid(t *testing.T) {
	for _, tt := range validDocs {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.p.parse(tt.doc)
			if err != nil {
				t.Fatalf("%s: %v", tt.p.name, err)
			}
			if len(p.Statements) == 0 {
				t.Fatal("no statements")
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tt := range invalidDocs {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.p.parse(tt.doc)
			if err == nil {
				t.Fatalf("%s(%q) = %+v, want an error", tt.p.name, tt.doc, p)
			}
			var se *policy.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SyntaxError", err, err)
			}
			if !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", se.Msg, tt.msg)
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	doc := `{
  "Version": "2012-10-17",
  "Id": "secret-policy",
  "Statement": [
    {
      "Sid": "ReadFromApp",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::123456789012:role/app", "210987654321"], "Service": "lambda.amazonaws.com"},
      "Action": ["secretsmanager:GetSecretValue", "secretsmanager:Describe*"],
      "Resource": "*",
      "Condition": {
        "StringEquals": {"aws:PrincipalOrgID": "o-abc", "aws:SourceAccount": ["123456789012", 210987654321]},
        "ForAnyValue:StringLikeIfExists": {"aws:TagKeys": "team-*"},
        "Bool": {"aws:SecureTransport": true}
      }
    },
    {
      "Effect": "Deny",
      "NotPrincipal": "*",
      "NotAction": "secretsmanager:Get*",
      "NotResource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-*"
    }
  ]
}`
	got, err := policy.ParseResourcePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := &policy.Policy{
		Version: "2012-10-17",
		ID:      "secret-policy",
		Statements: []policy.Statement{
			{
				Sid:    "ReadFromApp",
				Effect: policy.Allow,
				Principal: &policy.Principal{
					AWS:     []string{"arn:aws:iam::123456789012:role/app", "210987654321"},
					Service: []string{"lambda.amazonaws.com"},
				},
				Action:   policy.Patterns{Values: []string{"secretsmanager:GetSecretValue", "secretsmanager:Describe*"}},
				Resource: policy.Patterns{Values: []string{"*"}},
				Conditions: []policy.Condition{
					{Operator: policy.Bool, Key: "aws:SecureTransport", Values: []string{"true"}},
					{Set: policy.ForAnyValue, Operator: policy.StringLike, IfExists: true, Key: "aws:TagKeys", Values: []string{"team-*"}},
					{Operator: policy.StringEquals, Key: "aws:PrincipalOrgID", Values: []string{"o-abc"}},
					{Operator: policy.StringEquals, Key: "aws:SourceAccount", Values: []string{"123456789012", "210987654321"}},
				},
			},
			{
				Effect:    policy.Deny,
				Principal: &policy.Principal{Not: true, Any: true},
				Action:    policy.Patterns{Not: true, Values: []string{"secretsmanager:Get*"}},
				Resource:  policy.Patterns{Not: true, Values: []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-*"}},
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseResourcePolicy:\n got %+v\nwant %+v", got, want)
	}
	if name := got.Statements[0].Conditions[1].OperatorName(); name != "ForAnyValue:StringLikeIfExists" {
		t.Errorf("OperatorName() = %q", name)
	}

	def, err := policy.Parse(`{"Statement":{"Effect":"Allow","Action":"*"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if def.Version != policy.Version2008 {
		t.Errorf("default Version = %q, want %q", def.Version, policy.Version2008)
	}
	if def.Statements[0].Resource.Values != nil || def.Statements[0].Principal != nil {
		t.Errorf("absent Resource and Principal parsed as %+v", def.Statements[0])
	}
}

func TestIsPublic(t *testing.T) {
	anyone := func(c string) string {
		m := `"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"`
		if c != "" {
			m += `,"Condition":` + c
		}
		return stmt(m)
	}
	tests := []struct {
		name string
		doc  string
		want bool
	}{
		{"named account", res(""), false},
		{"principal star", anyone(""), true},
		{"aws star", stmt(`"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"`), true},
		{"star among accounts", stmt(`"Effect":"Allow","Principal":{"AWS":["123456789012","*"]},"Action":"*","Resource":"*"`), true},
		{"service star", stmt(`"Effect":"Allow","Principal":{"Service":"*"},"Action":"*","Resource":"*"`), true},
		{"named service", stmt(`"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"*","Resource":"*"`), false},
		{"deny star", stmt(`"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"`), false},
		{"allow not principal", stmt(`"Effect":"Allow","NotPrincipal":{"AWS":"123456789012"},"Action":"*","Resource":"*"`), true},
		{"deny not principal", stmt(`"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"*","Resource":"*"`), false},
		{"principal account", anyone(`{"StringEquals":{"aws:PrincipalAccount":"123456789012"}}`), false},
		{"principal account case-insensitive key", anyone(`{"StringEquals":{"AWS:principalaccount":"123456789012"}}`), false},
		{"org id", anyone(`{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}`), false},
		{"source account", anyone(`{"StringEqualsIgnoreCase":{"aws:SourceAccount":"123456789012"}}`), false},
		{"source vpc", anyone(`{"StringEquals":{"aws:SourceVpc":"vpc-1a2b3c4d"}}`), false},
		{"source vpce", anyone(`{"ForAnyValue:StringEquals":{"aws:SourceVpce":["vpce-1","vpce-2"]}}`), false},
		{"source ip", anyone(`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), false},
		{"source ip everything", anyone(`{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","0.0.0.0/0"]}}`), true},
		{"source ip everything v6", anyone(`{"IpAddress":{"aws:SourceIp":"::/0"}}`), true},
		{"not ip address", anyone(`{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), true},
		{"ip address on account key", anyone(`{"IpAddress":{"aws:PrincipalAccount":"10.0.0.1"}}`), true},
		{"string equals on ip key", anyone(`{"StringEquals":{"aws:SourceIp":"10.0.0.1"}}`), true},
		{"negated string", anyone(`{"StringNotEquals":{"aws:PrincipalAccount":"123456789012"}}`), true},
		{"if exists", anyone(`{"StringEqualsIfExists":{"aws:SourceVpc":"vpc-1a2b3c4d"}}`), true},
		{"for all values", anyone(`{"ForAllValues:StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}`), true},
		{"null operator", anyone(`{"Null":{"aws:PrincipalAccount":"false"}}`), true},
		{"like with wildcard only", anyone(`{"StringLike":{"aws:PrincipalAccount":"*"}}`), true},
		{"like with wildcard account", anyone(`{"StringLike":{"aws:PrincipalAccount":"1234*"}}`), true},
		{"like without wildcard", anyone(`{"StringLike":{"aws:PrincipalAccount":"123456789012"}}`), false},
		{"arn like pinned account", anyone(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/*"}}`), false},
		{"arn like any account", anyone(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/app"}}`), true},
		{"arn like star", anyone(`{"ArnLike":{"aws:SourceArn":"*"}}`), true},
		{"arn equals", anyone(`{"ArnEquals":{"aws:SourceArn":"arn:aws:lambda:us-east-1:123456789012:function:f"}}`), false},
		{"other key only", anyone(`{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"aws:userid":"AIDA"}}`), true},
		{"restricting and other key", anyone(`{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"aws:PrincipalOrgID":"o-1"}}`), false},
		{"one public statement of two", `{"Statement":[
			{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"},
			{"Effect":"Allow","Principal":"*","Action":"secretsmanager:DescribeSecret","Resource":"*"}]}`, true},
		{"deny does not narrow", `{"Statement":[
			{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},
			{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}]}`, true},
		{"identity policy", stmt(`"Effect":"Allow","Action":"*","Resource":"*"`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.IsPublic(); got != tt.want {
				t.Errorf("IsPublic() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []policy.Finding
	}{
		{"passes", res(""), nil},
		{"syntax", `{"Statement":[]}`, []policy.Finding{{policy.CheckSyntax, "policy Statement is an empty array; it needs at least one statement"}}},
		{"identity policy is a syntax error", stmt(`"Effect":"Allow","Action":"*","Resource":"*"`),
			[]policy.Finding{{policy.CheckSyntax, "statement 1 has no Principal or NotPrincipal; a resource policy must say whom it applies to"}}},
		{"public statements", `{"Statement":[
			{"Sid":"Everyone","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},
			{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"},
			{"Effect":"Allow","NotPrincipal":{"AWS":"123456789012"},"Action":"*","Resource":"*"},
			{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}]}`, []policy.Finding{
			{policy.CheckPublicAccess, `statement 1 (Sid "Everyone") allows access to every principal with Principal "*"; name the principals that need access, or add a Condition on aws:PrincipalAccount, aws:PrincipalOrgID, aws:PrincipalArn, aws:SourceAccount, aws:SourceArn, aws:SourceIp, aws:SourceVpc or aws:SourceVpce`},
			{policy.CheckPublicAccess, `statement 3 allows access to every principal to everyone outside its NotPrincipal; name the principals that need access, or add a Condition on aws:PrincipalAccount, aws:PrincipalOrgID, aws:PrincipalArn, aws:SourceAccount, aws:SourceArn, aws:SourceIp, aws:SourceVpc or aws:SourceVpce`},
			{policy.CheckPublicAccess, `statement 4 allows access to every principal with a "*" principal; name the principals that need access, or add a Condition on aws:PrincipalAccount, aws:PrincipalOrgID, aws:PrincipalArn, aws:SourceAccount, aws:SourceArn, aws:SourceIp, aws:SourceVpc or aws:SourceVpce`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policy.Validate(tt.doc)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, tt := range validDocs {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.p.parse(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, tt.p, p)
		})
	}
}

func roundTrip(t *testing.T, p parser, want *policy.Policy) {
	t.Helper()
	out, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if utf8.RuneCount(out) > policy.MaxLength {
		return // canonical arrays can outgrow a document at the limit
	}
	got, err := p.parse(string(out))
	if err != nil {
		t.Fatalf("%s(Marshal(p)): %v\n%s", p.name, err, out)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the policy:\n got %+v\nwant %+v\njson %s", got, want, out)
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range validDocs {
		f.Add(tt.doc)
	}
	for _, tt := range invalidDocs {
		f.Add(tt.doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		for _, p := range []parser{anyKind, resourceKind, identityKind} {
			pol, err := p.parse(doc)
			if err != nil {
				var se *policy.SyntaxError
				if !errors.As(err, &se) || se.Msg == "" {
					t.Fatalf("%s: error %v (%T) is not a *SyntaxError with a message", p.name, err, err)
				}
				if pol != nil {
					t.Fatalf("%s returned a policy and an error", p.name)
				}
				if p.name == resourceKind.name {
					f := policy.Validate(doc)
					if len(f) != 1 || f[0].CheckName != policy.CheckSyntax || f[0].Message != se.Msg {
						t.Fatalf("Validate = %q for a document ParseResourcePolicy rejects with %q", f, se.Msg)
					}
				}
				continue
			}
			if len(pol.Statements) == 0 {
				t.Fatalf("%s accepted a policy without statements", p.name)
			}
			_ = pol.IsPublic()
			if p.name == resourceKind.name {
				for _, f := range policy.Validate(doc) {
					if f.CheckName != policy.CheckPublicAccess {
						t.Fatalf("Validate on a valid resource policy reported %q", f)
					}
				}
			}
			roundTrip(t, p, pol)
		}
	})
}
