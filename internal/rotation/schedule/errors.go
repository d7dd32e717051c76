package schedule

import "fmt"

// The request members a RuleError can name, spelled as in the AWS API
// reference.
const (
	FieldRules                  = "RotationRules"
	FieldAutomaticallyAfterDays = "RotationRules.AutomaticallyAfterDays"
	FieldScheduleExpression     = "RotationRules.ScheduleExpression"
	FieldDuration               = "RotationRules.Duration"
)

// wireNames are the members as AWS's validation messages spell them.
var wireNames = map[string]string{
	FieldRules:                  "rotationRules",
	FieldAutomaticallyAfterDays: "rotationRules.automaticallyAfterDays",
	FieldScheduleExpression:     "rotationRules.scheduleExpression",
	FieldDuration:               "rotationRules.duration",
}

// RuleError says why Parse refused a set of rotation rules.
//
// Constraint is true when a limit of the AWS service model is violated
// (length, pattern, numeric range): AWS answers those with a
// ValidationException. Otherwise the rules are well-formed but not
// acceptable (a bad cron field, a window overlapping the next one, a schedule
// that is too frequent): AWS answers InvalidParameterException.
//
// Message is written as AWS writes it and is safe to send to the client as
// is; a Constraint message has AWS's "1 validation error detected: …" form.
type RuleError struct {
	Field      string // one of the Field constants
	Constraint bool
	Message    string
}

func (e *RuleError) Error() string { return e.Message }

// constraintError is AWS's model-constraint message. Like the rest of Rotor
// it leaves the offending value out.
func constraintError(field, constraint string) *RuleError {
	return &RuleError{
		Field:      field,
		Constraint: true,
		Message:    fmt.Sprintf("1 validation error detected: Value at '%s' failed to satisfy constraint: %s", wireNames[field], constraint),
	}
}

func paramError(field, format string, args ...any) *RuleError {
	return &RuleError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// exprError reports an unusable ScheduleExpression. The expression has
// passed the length and character checks, so quoting it is safe.
func exprError(expr, format string, args ...any) *RuleError {
	return paramError(FieldScheduleExpression, "Invalid ScheduleExpression '%s': %s.", expr, fmt.Sprintf(format, args...))
}
