package policy

import (
	"errors"
	"fmt"
	"strconv"
)

// The check names Validate reports, for ValidateResourcePolicy's
// ValidationErrors[].CheckName. AWS documents three checks (syntax, broad
// access through Zelkova, caller lock-out) but not their names.
const (
	// CheckSyntax: the document is not a valid resource policy.
	CheckSyntax = "SYNTAX_CHECK"
	// CheckPublicAccess: a statement grants access to every principal. The
	// name is the one AWS is reported to use for wildcard principals
	// (REFLEXIVE_PRINCIPAL_CHECK), so clients keyed on it behave alike.
	CheckPublicAccess = "REFLEXIVE_PRINCIPAL_CHECK"
)

// Finding is one failed check of Validate.
type Finding struct {
	CheckName string
	Message   string
}

// Validate runs ValidateResourcePolicy's checks on a resource policy and
// returns what fails, nil when the policy passes: a syntax error as one
// CheckSyntax finding (and nothing else, since an unparsed policy cannot be
// analysed), or one CheckPublicAccess finding per statement that IsPublic
// counts as public.
//
// The lock-out check needs the caller and policy evaluation, so it is not
// made here.
func Validate(doc string) []Finding {
	p, err := ParseResourcePolicy(doc)
	if err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) { // unreachable: parsing fails only with *SyntaxError
			return []Finding{{CheckName: CheckSyntax, Message: "policy is not valid"}}
		}
		return []Finding{{CheckName: CheckSyntax, Message: se.Msg}}
	}
	var out []Finding
	for i := range p.Statements {
		s := &p.Statements[i]
		if !s.isPublic() {
			continue
		}
		name := "statement " + strconv.Itoa(i+1)
		if s.Sid != "" {
			name += " (Sid " + quote(s.Sid) + ")"
		}
		how := "with Principal \"*\""
		switch {
		case s.Principal.Not:
			how = "to everyone outside its NotPrincipal"
		case !s.Principal.Any:
			how = "with a \"*\" principal"
		}
		out = append(out, Finding{
			CheckName: CheckPublicAccess,
			Message: fmt.Sprintf("%s allows access to every principal %s; name the principals that need access, "+
				"or add a Condition on aws:PrincipalAccount, aws:PrincipalOrgID, aws:PrincipalArn, aws:SourceAccount, "+
				"aws:SourceArn, aws:SourceIp, aws:SourceVpc or aws:SourceVpce", name, how),
		})
	}
	return out
}
