package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

type docKind int

const (
	anyPolicy docKind = iota
	resourcePolicy
	identityPolicy
)

var (
	policyKeys    = []string{"Version", "Id", "Statement"}
	statementKeys = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
	principalKeys = []string{"AWS", "Service", "Federated", "CanonicalUser"}
)

func parse(doc string, k docKind) (*Policy, error) {
	if doc == "" {
		return nil, syntaxErrorf("policy is empty")
	}
	if !utf8.ValidString(doc) {
		return nil, syntaxErrorf("policy is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(doc); n > MaxLength {
		return nil, syntaxErrorf("policy is %d characters long; the limit is %d", n, MaxLength)
	}
	root, err := decodeJSON(doc)
	if err != nil {
		return nil, err
	}
	if root.kind != kindObject {
		return nil, syntaxErrorf("policy must be a JSON object, not %v", root.kind)
	}
	if root.dup != "" {
		return nil, syntaxErrorf("policy has the key %s twice", quote(root.dup))
	}
	p := &Policy{Version: Version2008}
	var stmts *node
	for i, key := range root.keys {
		v := root.vals[i]
		switch key {
		case "Version":
			if v.kind != kindString {
				return nil, syntaxErrorf("policy Version must be a string, not %v", v.kind)
			}
			if v.text != Version2012 && v.text != Version2008 {
				return nil, syntaxErrorf("policy Version must be %q or %q, not %s", Version2012, Version2008, quote(v.text))
			}
			p.Version = v.text
		case "Id":
			if v.kind != kindString {
				return nil, syntaxErrorf("policy Id must be a string, not %v", v.kind)
			}
			p.ID = v.text
		case "Statement":
			stmts = v
		default:
			return nil, unknownKey("policy", key, policyKeys)
		}
	}
	var list []*node
	switch {
	case stmts == nil:
		return nil, syntaxErrorf("policy has no Statement")
	case stmts.kind == kindObject:
		list = []*node{stmts}
	case stmts.kind == kindArray && len(stmts.elems) > 0:
		list = stmts.elems
	case stmts.kind == kindArray:
		return nil, syntaxErrorf("policy Statement is an empty array; it needs at least one statement")
	default:
		return nil, syntaxErrorf("policy Statement must be an object or an array of objects, not %v", stmts.kind)
	}
	p.Statements = make([]Statement, len(list))
	sids := map[string]int{}
	for i, n := range list {
		if err := parseStatement(&p.Statements[i], n, i, k); err != nil {
			return nil, err
		}
		if sid := p.Statements[i].Sid; sid != "" {
			if j, dup := sids[sid]; dup {
				return nil, syntaxErrorf("statement %d: Sid %s is already used by statement %d; Sids must be unique", i+1, quote(sid), j+1)
			}
			sids[sid] = i
		}
	}
	return p, nil
}

func parseStatement(st *Statement, n *node, i int, k docKind) error {
	ctx := "statement " + strconv.Itoa(i+1)
	if n.kind != kindObject {
		return syntaxErrorf("%s must be an object, not %v", ctx, n.kind)
	}
	if sid := n.get("Sid"); sid != nil {
		if sid.kind != kindString {
			return syntaxErrorf("%s: Sid must be a string, not %v", ctx, sid.kind)
		}
		st.Sid = sid.text
		if st.Sid != "" {
			ctx += " (Sid " + quote(st.Sid) + ")"
		}
	}
	if n.dup != "" {
		return syntaxErrorf("%s has the key %s twice", ctx, quote(n.dup))
	}
	var action, notAction, resource, notResource, principal, notPrincipal, condition *node
	for j, key := range n.keys {
		v := n.vals[j]
		switch key {
		case "Sid":
		case "Effect":
			if v.kind != kindString {
				return syntaxErrorf("%s: Effect must be the string \"Allow\" or \"Deny\", not %v", ctx, v.kind)
			}
			switch Effect(v.text) {
			case Allow, Deny:
				st.Effect = Effect(v.text)
			default:
				return syntaxErrorf("%s: Effect must be \"Allow\" or \"Deny\", not %s", ctx, quote(v.text))
			}
		case "Action":
			action = v
		case "NotAction":
			notAction = v
		case "Resource":
			resource = v
		case "NotResource":
			notResource = v
		case "Principal":
			principal = v
		case "NotPrincipal":
			notPrincipal = v
		case "Condition":
			condition = v
		default:
			return unknownKey(ctx, key, statementKeys)
		}
	}
	if st.Effect == "" {
		return syntaxErrorf("%s has no Effect; it must be \"Allow\" or \"Deny\"", ctx)
	}

	// Action
	name, v, err := oneOf(ctx, "Action", action, notAction)
	if err != nil {
		return err
	}
	if v == nil {
		return syntaxErrorf("%s has no Action or NotAction", ctx)
	}
	if st.Action.Values, err = stringList(ctx, name, v); err != nil {
		return err
	}
	st.Action.Not = name == "NotAction"
	for _, a := range st.Action.Values {
		if problem := checkAction(a); problem != "" {
			return syntaxErrorf("%s: %s %s %s", ctx, name, quote(a), problem)
		}
	}

	// Resource
	name, v, err = oneOf(ctx, "Resource", resource, notResource)
	if err != nil {
		return err
	}
	if v == nil && k != anyPolicy {
		return syntaxErrorf("%s has no Resource or NotResource; use \"Resource\": \"*\" for every resource the policy applies to", ctx)
	}
	if v != nil {
		if st.Resource.Values, err = stringList(ctx, name, v); err != nil {
			return err
		}
		st.Resource.Not = name == "NotResource"
		for _, r := range st.Resource.Values {
			if r != "*" && (!strings.HasPrefix(r, "arn:") || strings.Count(r, ":") < 5) {
				return syntaxErrorf("%s: %s %s must be \"*\" or an ARN such as arn:aws:secretsmanager:us-east-1:123456789012:secret:name-*", ctx, name, quote(r))
			}
		}
	}

	// Principal
	name, v, err = oneOf(ctx, "Principal", principal, notPrincipal)
	if err != nil {
		return err
	}
	switch {
	case v != nil && k == identityPolicy:
		return syntaxErrorf("%s: an identity policy cannot have %s; it applies to the principal it is attached to", ctx, name)
	case v == nil && k == resourcePolicy:
		return syntaxErrorf("%s has no Principal or NotPrincipal; a resource policy must say whom it applies to", ctx)
	case v != nil:
		if st.Principal, err = parsePrincipal(ctx, name, v); err != nil {
			return err
		}
	}

	if condition != nil {
		if st.Conditions, err = parseConditions(ctx, condition); err != nil {
			return err
		}
	}
	return nil
}

// oneOf returns whichever of an element and its Not form is present, with
// its name; an error when both are.
func oneOf(ctx, name string, v, notV *node) (string, *node, error) {
	switch {
	case v != nil && notV != nil:
		return "", nil, syntaxErrorf("%s has both %s and Not%s; use one", ctx, name, name)
	case notV != nil:
		return "Not" + name, notV, nil
	}
	return name, v, nil
}

// stringList reads a string or a non-empty array of non-empty strings.
func stringList(ctx, name string, v *node) ([]string, error) {
	switch v.kind {
	case kindString:
		if v.text == "" {
			return nil, syntaxErrorf("%s: %s is an empty string", ctx, name)
		}
		return []string{v.text}, nil
	case kindArray:
		if len(v.elems) == 0 {
			return nil, syntaxErrorf("%s: %s is an empty array", ctx, name)
		}
		out := make([]string, len(v.elems))
		for i, e := range v.elems {
			if e.kind != kindString {
				return nil, syntaxErrorf("%s: %s must hold only strings, but item %d is %v", ctx, name, i+1, e.kind)
			}
			if e.text == "" {
				return nil, syntaxErrorf("%s: %s item %d is an empty string", ctx, name, i+1)
			}
			out[i] = e.text
		}
		return out, nil
	}
	return nil, syntaxErrorf("%s: %s must be a string or an array of strings, not %v", ctx, name, v.kind)
}

// checkAction reports what is wrong with an action pattern, or "".
func checkAction(a string) string {
	if a == "*" {
		return ""
	}
	service, action, ok := strings.Cut(a, ":")
	if !ok {
		return "must be \"*\" or service:Action, such as secretsmanager:GetSecretValue"
	}
	if service == "" || strings.Trim(service, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-*?") != "" {
		return "has a bad service prefix; it may hold letters, digits, - and the wildcards * and ?"
	}
	if action == "" || strings.Trim(action, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*?") != "" {
		return "has a bad action name; it may hold letters, digits, - _ and the wildcards * and ?"
	}
	return ""
}

func parsePrincipal(ctx, name string, v *node) (*Principal, error) {
	p := &Principal{Not: name == "NotPrincipal"}
	switch v.kind {
	case kindString:
		if v.text != "*" {
			return nil, syntaxErrorf("%s: %s must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}, not the string %s", ctx, name, quote(v.text))
		}
		p.Any = true
		return p, nil
	case kindObject:
	default:
		return nil, syntaxErrorf("%s: %s must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}, not %v", ctx, name, v.kind)
	}
	if v.dup != "" {
		return nil, syntaxErrorf("%s: %s has the key %s twice", ctx, name, quote(v.dup))
	}
	if len(v.keys) == 0 {
		return nil, syntaxErrorf("%s: %s is an empty object; name at least one principal", ctx, name)
	}
	for i, key := range v.keys {
		field := name + " " + key
		var dst *[]string
		switch key {
		case "AWS":
			dst = &p.AWS
		case "Service":
			dst = &p.Service
		case "Federated":
			dst = &p.Federated
		case "CanonicalUser":
			dst = &p.CanonicalUser
		default:
			return nil, unknownKey(ctx+": "+name, key, principalKeys)
		}
		list, err := stringList(ctx, field, v.vals[i])
		if err != nil {
			return nil, err
		}
		if key == "AWS" {
			for _, a := range list {
				if problem := checkAWSPrincipal(a); problem != "" {
					return nil, syntaxErrorf("%s: %s %s %s", ctx, field, quote(a), problem)
				}
			}
		}
		*dst = list
	}
	return p, nil
}

func checkAWSPrincipal(a string) string {
	switch {
	case a == "*":
		return ""
	case len(a) == 12 && strings.Trim(a, "0123456789") == "":
		return ""
	case !strings.HasPrefix(a, "arn:") || strings.Count(a, ":") < 5:
		return "must be \"*\", a 12-digit account id or an ARN such as arn:aws:iam::123456789012:root"
	case strings.ContainsAny(a, "*?"):
		return "has a wildcard; IAM matches principals exactly, so use \"*\" alone or name the principal (a Condition on aws:PrincipalArn can match patterns)"
	}
	return ""
}

func parseConditions(ctx string, v *node) ([]Condition, error) {
	if v.kind != kindObject {
		return nil, syntaxErrorf("%s: Condition must be an object of operators, such as {\"StringEquals\": {\"aws:PrincipalAccount\": \"123456789012\"}}, not %v", ctx, v.kind)
	}
	if v.dup != "" {
		return nil, syntaxErrorf("%s: Condition has the operator %s twice; merge its keys into one object", ctx, quote(v.dup))
	}
	var out []Condition
	for i, opName := range v.keys {
		set, op, ifExists, ok, hint := parseOperator(opName)
		if !ok {
			msg := fmt.Sprintf("%s: Condition has the unknown operator %s", ctx, quote(opName))
			if hint != "" {
				msg += "; " + hint
			}
			return nil, &SyntaxError{Msg: msg}
		}
		block := v.vals[i]
		where := ctx + ": Condition " + opName
		if block.kind != kindObject {
			return nil, syntaxErrorf("%s must be an object of condition keys, such as {\"aws:PrincipalAccount\": \"123456789012\"}, not %v", where, block.kind)
		}
		if block.dup != "" {
			return nil, syntaxErrorf("%s has the key %s twice", where, quote(block.dup))
		}
		for j, key := range block.keys {
			prefix, rest, found := strings.Cut(key, ":")
			if !found || prefix == "" || rest == "" {
				return nil, syntaxErrorf("%s: condition key %s must be service:name, such as aws:SourceIp", where, quote(key))
			}
			values, err := conditionValues(where+" "+key, block.vals[j])
			if err != nil {
				return nil, err
			}
			for _, val := range values {
				if problem := checkValue(op, val); problem != "" {
					return nil, syntaxErrorf("%s %s: value %s %s", where, key, quote(val), problem)
				}
			}
			out = append(out, Condition{Set: set, Operator: op, IfExists: ifExists, Key: key, Values: values})
		}
	}
	slices.SortFunc(out, func(a, b Condition) int {
		if c := strings.Compare(a.OperatorName(), b.OperatorName()); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}

func conditionValues(where string, v *node) ([]string, error) {
	switch v.kind {
	case kindString, kindNumber, kindBool:
		return []string{v.text}, nil
	case kindArray:
		if len(v.elems) == 0 {
			return nil, syntaxErrorf("%s is an empty array; give at least one value", where)
		}
		out := make([]string, len(v.elems))
		for i, e := range v.elems {
			switch e.kind {
			case kindString, kindNumber, kindBool:
				out[i] = e.text
			default:
				return nil, syntaxErrorf("%s item %d is %v; values must be strings, numbers or booleans", where, i+1, e.kind)
			}
		}
		return out, nil
	}
	return nil, syntaxErrorf("%s is %v; it must be a string, number or boolean, or an array of them", where, v.kind)
}

func unknownKey(ctx, key string, known []string) *SyntaxError {
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return syntaxErrorf("%s has the unknown key %s; did you mean %q? keys are case-sensitive", ctx, quote(key), k)
		}
	}
	return syntaxErrorf("%s has the unknown key %s; allowed keys are %s", ctx, quote(key), strings.Join(known, ", "))
}

// quote quotes s for a message, shortened so a message stays readable.
func quote(s string) string {
	const maxRunes = 64
	if utf8.RuneCountInString(s) <= maxRunes {
		return strconv.Quote(s)
	}
	r := []rune(s)
	return strconv.Quote(string(r[:maxRunes])) + "…"
}
