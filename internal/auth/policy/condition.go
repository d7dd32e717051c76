package policy

import (
	"encoding/base64"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Operator is a base condition operator, without set qualifier or IfExists.
type Operator string

// IAM's condition operators.
const (
	StringEquals              Operator = "StringEquals"
	StringNotEquals           Operator = "StringNotEquals"
	StringEqualsIgnoreCase    Operator = "StringEqualsIgnoreCase"
	StringNotEqualsIgnoreCase Operator = "StringNotEqualsIgnoreCase"
	StringLike                Operator = "StringLike"
	StringNotLike             Operator = "StringNotLike"
	NumericEquals             Operator = "NumericEquals"
	NumericNotEquals          Operator = "NumericNotEquals"
	NumericLessThan           Operator = "NumericLessThan"
	NumericLessThanEquals     Operator = "NumericLessThanEquals"
	NumericGreaterThan        Operator = "NumericGreaterThan"
	NumericGreaterThanEquals  Operator = "NumericGreaterThanEquals"
	DateEquals                Operator = "DateEquals"
	DateNotEquals             Operator = "DateNotEquals"
	DateLessThan              Operator = "DateLessThan"
	DateLessThanEquals        Operator = "DateLessThanEquals"
	DateGreaterThan           Operator = "DateGreaterThan"
	DateGreaterThanEquals     Operator = "DateGreaterThanEquals"
	Bool                      Operator = "Bool"
	BinaryEquals              Operator = "BinaryEquals"
	IpAddress                 Operator = "IpAddress"
	NotIpAddress              Operator = "NotIpAddress"
	ArnEquals                 Operator = "ArnEquals"
	ArnLike                   Operator = "ArnLike"
	ArnNotEquals              Operator = "ArnNotEquals"
	ArnNotLike                Operator = "ArnNotLike"
	Null                      Operator = "Null"
)

// valueType is what an operator's values must parse as.
type valueType int

const (
	anyValue valueType = iota
	numberValue
	dateValue
	boolValue
	ipValue
	base64Value
)

var operators = map[Operator]valueType{
	StringEquals: anyValue, StringNotEquals: anyValue,
	StringEqualsIgnoreCase: anyValue, StringNotEqualsIgnoreCase: anyValue,
	StringLike: anyValue, StringNotLike: anyValue,
	NumericEquals: numberValue, NumericNotEquals: numberValue,
	NumericLessThan: numberValue, NumericLessThanEquals: numberValue,
	NumericGreaterThan: numberValue, NumericGreaterThanEquals: numberValue,
	DateEquals: dateValue, DateNotEquals: dateValue,
	DateLessThan: dateValue, DateLessThanEquals: dateValue,
	DateGreaterThan: dateValue, DateGreaterThanEquals: dateValue,
	Bool:         boolValue,
	BinaryEquals: base64Value,
	IpAddress:    ipValue, NotIpAddress: ipValue,
	ArnEquals: anyValue, ArnLike: anyValue, ArnNotEquals: anyValue, ArnNotLike: anyValue,
	Null: boolValue,
}

// SetOperator qualifies an operator for multivalued condition keys.
type SetOperator string

// The set qualifiers; the empty SetOperator means none.
const (
	ForAnyValue  SetOperator = "ForAnyValue"
	ForAllValues SetOperator = "ForAllValues"
)

// Condition is one test of a Condition element: a condition key compared
// with values by an operator. The request passes it when the key matches any
// of the values (for negated operators: none of them).
type Condition struct {
	Set      SetOperator // "" when the operator has no ForAnyValue:/ForAllValues: prefix
	Operator Operator
	IfExists bool   // the operator ends in IfExists: a missing key passes
	Key      string // as written; IAM compares condition keys case-insensitively
	// Values as text: JSON numbers keep their literal, booleans are "true"
	// or "false".
	Values []string
}

// OperatorName returns the operator as written in a policy, such as
// "ForAnyValue:StringLikeIfExists".
func (c *Condition) OperatorName() string {
	name := string(c.Operator)
	if c.IfExists {
		name += "IfExists"
	}
	if c.Set != "" {
		name = string(c.Set) + ":" + name
	}
	return name
}

// parseOperator splits an operator name into its parts. ok is false for a
// name that is not IAM's; hint is then a suggestion, or "".
func parseOperator(name string) (set SetOperator, op Operator, ifExists bool, ok bool, hint string) {
	rest := name
	for _, s := range []SetOperator{ForAnyValue, ForAllValues} {
		if after, found := strings.CutPrefix(rest, string(s)+":"); found {
			set, rest = s, after
			break
		}
	}
	if base, found := strings.CutSuffix(rest, "IfExists"); found {
		if Operator(base) == Null {
			return "", "", false, false, "Null cannot take IfExists"
		}
		ifExists, rest = true, base
	}
	if _, known := operators[Operator(rest)]; known {
		return set, Operator(rest), ifExists, true, ""
	}
	for known := range operators {
		if strings.EqualFold(string(known), rest) {
			c := Condition{Set: set, Operator: known, IfExists: ifExists}
			return "", "", false, false, "did you mean " + strconv.Quote(c.OperatorName()) + "? operator names are case-sensitive"
		}
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		return "", "", false, false, "the only prefixes are ForAnyValue: and ForAllValues:"
	}
	return "", "", false, false, ""
}

// checkValue reports what is wrong with v as a value for op, or "".
func checkValue(op Operator, v string) string {
	switch operators[op] {
	case numberValue:
		// ParseFloat also takes "NaN", "Inf" and hex; IAM numbers are decimal.
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(v, "xX") {
			return "is not a number"
		}
	case dateValue:
		if _, ok := parseDate(v); !ok {
			return "is not a date; use ISO 8601 such as 2026-01-31T23:59:59Z, or seconds since 1970"
		}
	case boolValue:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return "must be true or false"
		}
	case ipValue:
		if _, err := netip.ParsePrefix(v); err != nil {
			if _, err := netip.ParseAddr(v); err != nil {
				return "is not an IP address or CIDR block"
			}
		}
	case base64Value:
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return "is not base64"
		}
	}
	return ""
}

var dateLayouts = []string{
	time.RFC3339, // also takes fractional seconds
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseDate reads a date as policies and request contexts write them: whole
// seconds since 1970, or ISO 8601 in one of dateLayouts (UTC when the layout
// has no zone).
func parseDate(v string) (time.Time, bool) {
	// Only call ParseInt on what looks like an integer: its errors
	// allocate, and evaluation parses dates on every request.
	if digits := strings.TrimLeft(v, "+-"); digits != "" && len(v)-len(digits) <= 1 && strings.Trim(digits, "0123456789") == "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Unix(n, 0), true
		}
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
