package schedule_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/rotation/schedule"
)

func ts(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func days(n int64) *int64 { return &n }

func expr(e string) schedule.Rules { return schedule.Rules{ScheduleExpression: e} }

func exprDur(e, d string) schedule.Rules {
	return schedule.Rules{ScheduleExpression: e, Duration: d}
}

var (
	awsMin  = schedule.Options{}
	demoMin = schedule.Options{MinInterval: time.Minute}
)

func mustParse(t testing.TB, r schedule.Rules, o schedule.Options) *schedule.Schedule {
	t.Helper()
	s, err := schedule.Parse(r, o)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", r, err)
	}
	return s
}

func TestParseValid(t *testing.T) {
	const h, d = time.Hour, 24 * time.Hour
	tests := []struct {
		name     string
		rules    schedule.Rules
		opts     schedule.Options
		interval time.Duration
	}{
		{"after days", schedule.Rules{AutomaticallyAfterDays: days(30)}, awsMin, 30 * d},
		{"after 1 day", schedule.Rules{AutomaticallyAfterDays: days(1)}, awsMin, d},
		{"after 1000 days", schedule.Rules{AutomaticallyAfterDays: days(1000)}, awsMin, 1000 * d},
		{"after days with duration", schedule.Rules{AutomaticallyAfterDays: days(7), Duration: "24h"}, awsMin, 7 * d},
		{"rate 1 day", expr("rate(1 day)"), awsMin, d},
		{"rate 10 days", expr("rate(10 days)"), awsMin, 10 * d},
		{"rate 999 days", expr("rate(999 days)"), awsMin, 999 * d},
		{"rate 4 hours", expr("rate(4 hours)"), awsMin, 4 * h},
		{"rate 4 hours window 4h", exprDur("rate(4 hours)", "4h"), awsMin, 4 * h},
		{"rate 12 hours window 3h", exprDur("rate(12 hours)", "3h"), awsMin, 12 * h},
		{"rate 7 hours", expr("rate(7 hours)"), awsMin, 7 * h},
		{"rate 23976 hours", expr("rate(23976 hours)"), awsMin, 23976 * h},
		{"rate extra spaces", expr("rate( 30  days )"), awsMin, 30 * d},
		{"rate leading zero", expr("rate(07 days)"), awsMin, 7 * d},
		{"rate 1 hour lowered minimum", expr("rate(1 hour)"), schedule.Options{MinInterval: h}, h},
		{"rate minutes extension", expr("rate(5 minutes)"), demoMin, 5 * time.Minute},
		{"rate 1 minute extension", expr("rate(1 minute)"), demoMin, time.Minute},
		// The user guide's examples.
		{"aws every 8 hours from midnight", expr("cron(0 /8 * * ? *)"), awsMin, 8 * h},
		{"aws every 8 hours from 8", expr("cron(0 8/8 * * ? *)"), awsMin, 8 * h},
		{"aws every 10 hours from 2", expr("cron(0 2/10 * * ? *)"), awsMin, 4 * h}, // 22:00 → 02:00
		{"aws daily at 10", expr("cron(0 10 * * ? *)"), awsMin, d},
		{"aws saturdays", expr("cron(0 18 ? * SAT *)"), awsMin, 7 * d},
		{"aws first of month", expr("cron(0 8 1 * ? *)"), awsMin, 28 * d},
		{"aws quarterly first sunday", expr("cron(0 1 ? 1/3 SUN#1 *)"), awsMin, 84 * d},
		{"aws last day of month", expr("cron(0 17 L * ? *)"), awsMin, 28 * d},
		{"aws weekdays", expr("cron(0 8 ? * MON-FRI *)"), awsMin, d},
		{"aws 1st and 15th", expr("cron(0 16 1,15 * ? *)"), awsMin, 14 * d},
		{"aws first sunday midnight", expr("cron(0 0 ? * SUN#1 *)"), awsMin, 28 * d},
		{"aws 4/12", expr("cron(0 4/12 * * ? *)"), awsMin, 12 * h},
		// Names, case, lists, ranges, steps.
		{"lower-case names", expr("cron(0 8 ? jan,Jul mon-fri *)"), awsMin, d},
		{"month names range step", expr("cron(0 8 1 JAN-DEC/2 ? *)"), awsMin, 59 * d},
		{"weekday numbers", expr("cron(0 8 ? * 2-6 *)"), awsMin, d},
		{"weekday step", expr("cron(0 8 ? * 1/2 *)"), awsMin, d},      // SAT → SUN
		{"weekday star step", expr("cron(0 8 ? * */3 *)"), awsMin, d}, // SUN, WED, SAT
		{"hours list", expr("cron(0 0,6,12,18 * * ? *)"), awsMin, 6 * h},
		{"hours range step", expr("cron(0 6-18/6 * * ? *)"), awsMin, 6 * h},
		{"hours star step", expr("cron(0 */4 * * ? *)"), awsMin, 4 * h},
		{"hours close in a day but weekly", expr("cron(0 0,22 ? * MON *)"), awsMin, 22 * h},
		{"day range", expr("cron(0 3 1-7 * ? *)"), awsMin, d},
		{"day step", expr("cron(0 3 1/10 * ? *)"), awsMin, d}, // 31 → 1
		{"minutes 00", expr("cron(00 3 * * ? *)"), awsMin, d},
		{"last weekday of month L", expr("cron(0 0 ? * 6L *)"), awsMin, 28 * d},
		{"last weekday of month name", expr("cron(0 0 ? * FRIL *)"), awsMin, 28 * d},
		{"last weekday lower case", expr("cron(0 0 ? * fril *)"), awsMin, 28 * d},
		{"SUNL in day-of-month", expr("cron(0 0 SUNL * ? *)"), awsMin, 28 * d},
		{"L in day-of-week is saturday", expr("cron(0 0 ? * L *)"), awsMin, 7 * d},
		{"nth weekday number", expr("cron(0 0 ? * 3#5 *)"), awsMin, 63 * d},
		{"yearly weekday", expr("cron(0 0 ? 1 MON#1 *)"), awsMin, 364 * d},
		{"yearly date", expr("cron(0 0 1 1 ? *)"), awsMin, 365 * d},
		{"yearly last of february", expr("cron(0 12 L 2 ? *)"), awsMin, 365 * d},
		{"day 31", expr("cron(0 0 31 * ? *)"), awsMin, 31 * d},
		{"day-based window fills the day", exprDur("cron(0 17 L * ? *)", "7h"), awsMin, 28 * d},
		{"hour-based window crosses midnight", exprDur("cron(0 4/12 * * ? *)", "12h"), awsMin, 12 * h},
		{"midnight window 24h", exprDur("cron(0 0 * * ? *)", "24h"), awsMin, d},
		{"minutes extension", expr("cron(*/5 * * * ? *)"), schedule.Options{MinInterval: 5 * time.Minute}, 5 * time.Minute},
		{"minutes extension daily", expr("cron(30 9 * * ? *)"), schedule.Options{MinInterval: 30 * time.Minute}, d},
		{"minutes extension list", expr("cron(0,30 9 * * ? *)"), schedule.Options{MinInterval: 30 * time.Minute}, 30 * time.Minute},
		{"negative minimum means default", expr("rate(4 hours)"), schedule.Options{MinInterval: -1}, 4 * h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.rules, tt.opts)
			if got := s.Interval(); got != tt.interval {
				t.Errorf("Interval() = %v, want %v", got, tt.interval)
			}
			// Rules round-trips and is a copy.
			r := s.Rules()
			s2 := mustParse(t, r, tt.opts)
			if s2.String() != s.String() {
				t.Errorf("round trip: %q != %q", s2.String(), s.String())
			}
			if r.AutomaticallyAfterDays != nil {
				*r.AutomaticallyAfterDays = 9999
				if *s.Rules().AutomaticallyAfterDays == 9999 {
					t.Error("Rules() shares its AutomaticallyAfterDays with the schedule")
				}
			}
			now := ts(t, "2024-02-27T13:17:00Z")
			for _, last := range []time.Time{{}, now.Add(-40 * 24 * time.Hour), now.Add(-time.Hour)} {
				if a, b := s.Next(last, now), s2.Next(last, now); a != b {
					t.Errorf("round trip: Next(%v) = %v, want %v", last, b, a)
				}
			}
		})
	}
}

func TestParseKeepsCallerPointer(t *testing.T) {
	n := int64(3)
	s := mustParse(t, schedule.Rules{AutomaticallyAfterDays: &n}, awsMin)
	n = 500
	if got := *s.Rules().AutomaticallyAfterDays; got != 3 {
		t.Errorf("AutomaticallyAfterDays = %d after the caller changed its copy, want 3", got)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		rules schedule.Rules
		want  string
	}{
		{schedule.Rules{AutomaticallyAfterDays: days(30)}, "AutomaticallyAfterDays=30"},
		{schedule.Rules{AutomaticallyAfterDays: days(30), Duration: "2h"}, "AutomaticallyAfterDays=30 Duration=2h"},
		{expr("rate(4 hours)"), "ScheduleExpression=rate(4 hours)"},
		{exprDur("cron(0 8 ? * MON-FRI *)", "3h"), "ScheduleExpression=cron(0 8 ? * MON-FRI *) Duration=3h"},
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.rules, awsMin).String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const (
		fRules = schedule.FieldRules
		fDays  = schedule.FieldAutomaticallyAfterDays
		fExpr  = schedule.FieldScheduleExpression
		fDur   = schedule.FieldDuration
	)
	tests := []struct {
		name       string
		rules      schedule.Rules
		opts       schedule.Options
		field      string
		constraint bool
		want       string // a substring of the message
	}{
		// Members.
		{"both", schedule.Rules{AutomaticallyAfterDays: days(1), ScheduleExpression: "rate(1 day)"}, awsMin, fRules, false, "can't specify both"},
		{"neither", schedule.Rules{}, awsMin, fRules, false, "must specify either"},
		{"only duration", schedule.Rules{Duration: "2h"}, awsMin, fRules, false, "must specify either"},
		{"days 0", schedule.Rules{AutomaticallyAfterDays: days(0)}, awsMin, fDays, true, "greater than or equal to 1"},
		{"days negative", schedule.Rules{AutomaticallyAfterDays: days(-5)}, awsMin, fDays, true, "greater than or equal to 1"},
		{"days 1001", schedule.Rules{AutomaticallyAfterDays: days(1001)}, awsMin, fDays, true, "less than or equal to 1000"},
		{"expression too long", expr("rate(" + strings.Repeat("0", 245) + "1 days)"), awsMin, fExpr, true, "length less than or equal to 256"},
		{"expression bad char", expr("rate(1 day);"), awsMin, fExpr, true, "regular expression pattern"},
		{"expression dot", expr("rate(1.5 days)"), awsMin, fExpr, true, "regular expression pattern"},
		{"expression non-ascii", expr("rate(1 dаy)"), awsMin, fExpr, true, "regular expression pattern"},
		{"duration too short", exprDur("rate(1 day)", "h"), awsMin, fDur, true, "length greater than or equal to 2"},
		{"duration too long", exprDur("rate(1 day)", "100h"), awsMin, fDur, true, "length less than or equal to 3"},
		{"duration no unit", exprDur("rate(1 day)", "12"), awsMin, fDur, true, "[0-9]+h"},
		{"duration days", exprDur("rate(1 day)", "1d"), awsMin, fDur, true, "[0-9]+h"},
		{"duration upper H", exprDur("rate(1 day)", "2H"), awsMin, fDur, true, "[0-9]+h"},
		{"duration 0h", exprDur("rate(1 day)", "0h"), awsMin, fDur, false, "between 1h and 24h"},
		{"duration 25h", exprDur("rate(1 day)", "25h"), awsMin, fDur, false, "between 1h and 24h"},
		{"duration 99h", schedule.Rules{AutomaticallyAfterDays: days(2), Duration: "99h"}, awsMin, fDur, false, "between 1h and 24h"},
		// Expressions.
		{"not an expression", expr("every day"), awsMin, fExpr, false, "rate() or cron()"},
		{"upper-case keyword", expr("RATE(1 day)"), awsMin, fExpr, false, "rate() or cron()"},
		{"unclosed", expr("rate(1 day"), awsMin, fExpr, false, "rate() or cron()"},
		{"rate one field", expr("rate(1)"), awsMin, fExpr, false, "rate(Value Unit)"},
		{"rate three fields", expr("rate(1 day 2)"), awsMin, fExpr, false, "rate(Value Unit)"},
		{"rate 0", expr("rate(0 days)"), awsMin, fExpr, false, "positive whole number"},
		{"rate negative", expr("rate(-1 days)"), awsMin, fExpr, false, "positive whole number"},
		{"rate word", expr("rate(one day)"), awsMin, fExpr, false, "positive whole number"},
		{"rate 1 days", expr("rate(1 days)"), awsMin, fExpr, false, "use rate(1 day)"},
		{"rate 2 day", expr("rate(2 day)"), awsMin, fExpr, false, "use rate(2 days)"},
		{"rate 1 hours", expr("rate(1 hours)"), schedule.Options{MinInterval: time.Hour}, fExpr, false, "use rate(1 hour)"},
		{"rate week", expr("rate(1 week)"), awsMin, fExpr, false, "hour, hours, day or days"},
		{"rate upper unit", expr("rate(2 DAYS)"), awsMin, fExpr, false, "hour, hours, day or days"},
		{"rate minutes without extension", expr("rate(5 minutes)"), awsMin, fExpr, false, "hour, hours, day or days"},
		{"rate minutes with 1h minimum", expr("rate(60 minutes)"), schedule.Options{MinInterval: time.Hour}, fExpr, false, "hour, hours, day or days"},
		{"rate 1000 days", expr("rate(1000 days)"), awsMin, fExpr, false, "999 days"},
		{"rate 23977 hours", expr("rate(23977 hours)"), awsMin, fExpr, false, "999 days"},
		{"rate overflow", expr("rate(99999999999999999999999 days)"), awsMin, fExpr, false, "999 days"},
		{"rate 1 hour", expr("rate(1 hour)"), awsMin, fExpr, false, "minimum time between rotations is 4 hours"},
		{"rate 3 hours", expr("rate(3 hours)"), awsMin, fExpr, false, "rotations can be 3 hours apart"},
		{"rate minutes too frequent", expr("rate(5 minutes)"), schedule.Options{MinInterval: 10 * time.Minute}, fExpr, false, "minimum time between rotations is 10 minutes"},
		{"days above raised minimum", schedule.Rules{AutomaticallyAfterDays: days(1)}, schedule.Options{MinInterval: 48 * time.Hour}, fDays, false, "minimum time between rotations is 2 days"},
		{"cron five fields", expr("cron(0 8 * * ?)"), awsMin, fExpr, false, "six fields"},
		{"cron seven fields", expr("cron(0 0 8 * * ? *)"), awsMin, fExpr, false, "six fields"},
		{"minutes not 0", expr("cron(5 8 * * ? *)"), awsMin, fExpr, false, "Minutes field must be 0"},
		{"minutes star", expr("cron(* 8 * * ? *)"), awsMin, fExpr, false, "Minutes field must be 0"},
		{"minutes 0/30", expr("cron(0/30 8 * * ? *)"), awsMin, fExpr, false, "Minutes field must be 0"},
		{"minutes not 0 with 1h minimum", expr("cron(30 8 * * ? *)"), schedule.Options{MinInterval: time.Hour}, fExpr, false, "Minutes field must be 0"},
		{"year number", expr("cron(0 8 * * ? 2025)"), awsMin, fExpr, false, "Year field must be *"},
		{"year range", expr("cron(0 8 * * ? 2025-2030)"), awsMin, fExpr, false, "Year field must be *"},
		{"both question marks", expr("cron(0 8 ? * ? *)"), awsMin, fExpr, false, "only one of the Day-of-month and Day-of-week"},
		{"no question mark", expr("cron(0 8 * * MON *)"), awsMin, fExpr, false, "can't specify both"},
		{"no question mark stars", expr("cron(0 8 * * * *)"), awsMin, fExpr, false, "can't specify both"},
		{"older docs example without ?", expr("cron(0 1 * 1/3 SUN *)"), awsMin, fExpr, false, "can't specify both"},
		{"hour 24", expr("cron(0 24 * * ? *)"), awsMin, fExpr, false, "'24' isn't a valid Hours value: use 0-23"},
		{"hour name", expr("cron(0 MON * * ? *)"), awsMin, fExpr, false, "isn't a valid Hours value"},
		{"hour increment 0", expr("cron(0 0/0 * * ? *)"), awsMin, fExpr, false, "increment after / in the Hours field must be between 1 and 23"},
		{"hour increment 24", expr("cron(0 0/24 * * ? *)"), awsMin, fExpr, false, "between 1 and 23"},
		{"hour increment empty", expr("cron(0 0/ * * ? *)"), awsMin, fExpr, false, "between 1 and 23"},
		{"hour question mark", expr("cron(0 ? * * ? *)"), awsMin, fExpr, false, "? can only be the whole"},
		{"hour L", expr("cron(0 L * * ? *)"), awsMin, fExpr, false, "L isn't allowed in the Hours field"},
		{"hour hash", expr("cron(0 1#2 * * ? *)"), awsMin, fExpr, false, "# is only allowed in the Day-of-week field"},
		{"hours backwards", expr("cron(0 22-2 * * ? *)"), awsMin, fExpr, false, "runs backwards"},
		{"empty list element", expr("cron(0 1,,13 * * ? *)"), awsMin, fExpr, false, "empty list element"},
		{"trailing comma", expr("cron(0 1, * * ? *)"), awsMin, fExpr, false, "empty list element"},
		{"day 0", expr("cron(0 8 0 * ? *)"), awsMin, fExpr, false, "'0' isn't a valid Day-of-month value: use 1-31"},
		{"day 32", expr("cron(0 8 32 * ? *)"), awsMin, fExpr, false, "use 1-31"},
		{"day W", expr("cron(0 8 15W * ? *)"), awsMin, fExpr, false, "W (nearest weekday)"},
		{"day LW", expr("cron(0 8 LW * ? *)"), awsMin, fExpr, false, "W (nearest weekday)"},
		{"day L offset", expr("cron(0 8 L-2 * ? *)"), awsMin, fExpr, false, "L must be the whole Day-of-month field"},
		{"day L in list", expr("cron(0 8 1,L * ? *)"), awsMin, fExpr, false, "L must be the whole Day-of-month field"},
		{"day numeric L", expr("cron(0 8 6L * ? *)"), awsMin, fExpr, false, "L must be the whole Day-of-month field"},
		{"day hash", expr("cron(0 8 1#2 * ? *)"), awsMin, fExpr, false, "# is only allowed in the Day-of-week field"},
		{"month 0", expr("cron(0 8 1 0 ? *)"), awsMin, fExpr, false, "'0' isn't a valid Month value: use 1-12 or JAN-DEC"},
		{"month 13", expr("cron(0 8 1 13 ? *)"), awsMin, fExpr, false, "use 1-12 or JAN-DEC"},
		{"month bad name", expr("cron(0 8 1 JANUARY ? *)"), awsMin, fExpr, false, "'JANUARY' isn't a valid Month value"},
		{"month backwards", expr("cron(0 8 1 DEC-JAN ? *)"), awsMin, fExpr, false, "runs backwards"},
		{"month increment 13", expr("cron(0 8 1 1/13 ? *)"), awsMin, fExpr, false, "between 1 and 12"},
		{"month L", expr("cron(0 8 1 L ? *)"), awsMin, fExpr, false, "'L' isn't a valid Month value"},
		{"weekday 0", expr("cron(0 8 ? * 0 *)"), awsMin, fExpr, false, "'0' isn't a valid Day-of-week value: use 1-7 or SUN-SAT"},
		{"weekday 8", expr("cron(0 8 ? * 8 *)"), awsMin, fExpr, false, "use 1-7 or SUN-SAT"},
		{"weekday long name", expr("cron(0 8 ? * SUNDAY *)"), awsMin, fExpr, false, "'SUNDAY' isn't a valid Day-of-week value"},
		{"weekday backwards", expr("cron(0 8 ? * FRI-MON *)"), awsMin, fExpr, false, "runs backwards"},
		{"nth 0", expr("cron(0 8 ? * MON#0 *)"), awsMin, fExpr, false, "between 1 and 5"},
		{"nth 6", expr("cron(0 8 ? * MON#6 *)"), awsMin, fExpr, false, "between 1 and 5"},
		{"nth two digits", expr("cron(0 8 ? * MON#11 *)"), awsMin, fExpr, false, "between 1 and 5"},
		{"nth list", expr("cron(0 8 ? * MON#1,WED#2 *)"), awsMin, fExpr, false, "# must be the whole Day-of-week field"},
		{"nth bad day", expr("cron(0 8 ? * XYZ#1 *)"), awsMin, fExpr, false, "'XYZ' isn't a valid Day-of-week value"},
		{"last weekday in list", expr("cron(0 8 ? * MON,FRIL *)"), awsMin, fExpr, false, "L must be the whole Day-of-week field"},
		{"last weekday range", expr("cron(0 8 ? * MON-FRIL *)"), awsMin, fExpr, false, "L must be the whole Day-of-week field"},
		{"last weekday 8L", expr("cron(0 8 ? * 8L *)"), awsMin, fExpr, false, "use 1-7 or SUN-SAT"},
		{"never matches 30 FEB", expr("cron(0 0 30 2 ? *)"), awsMin, fExpr, false, "never matches a date"},
		{"never matches 31 APR", expr("cron(0 0 31 APR,JUN ? *)"), awsMin, fExpr, false, "never matches a date"},
		{"too rare 29 FEB", expr("cron(0 0 29 2 ? *)"), awsMin, fExpr, false, "more than a year"},
		{"too rare 5th monday of january", expr("cron(0 0 ? JAN MON#5 *)"), awsMin, fExpr, false, "more than a year"}, // 2001, then 2005
		{"too rare 5th friday of february", expr("cron(0 0 ? 2 FRI#5 *)"), awsMin, fExpr, false, "more than a year"},
		{"cron too frequent every 2 hours", expr("cron(0 */2 * * ? *)"), awsMin, fExpr, false, "rotations can be 2 hours apart"},
		{"cron too frequent uneven", expr("cron(0 1,3,12 * * ? *)"), awsMin, fExpr, false, "rotations can be 2 hours apart"},
		{"cron too frequent across midnight", expr("cron(0 0,22 * * ? *)"), awsMin, fExpr, false, "rotations can be 2 hours apart"},
		{"L in a day-of-month list", expr("cron(0 0,21 L,1 * ? *)"), awsMin, fExpr, false, "L must be the whole"},
		{"cron too frequent consecutive month days", expr("cron(0 0,21 1,2 * ? *)"), awsMin, fExpr, false, "rotations can be 3 hours apart"},
		{"cron minutes too frequent", expr("cron(*/5 * * * ? *)"), schedule.Options{MinInterval: 10 * time.Minute}, fExpr, false, "rotations can be 5 minutes apart"},
		{"cron minutes increment 60", expr("cron(0/60 * * * ? *)"), demoMin, fExpr, false, "between 1 and 59"},
		// Windows.
		{"rate hours window longer than interval", exprDur("rate(4 hours)", "5h"), awsMin, fDur, false, "windows can open 4 hours apart, so Duration can be at most 4h, not 5h"},
		{"cron hours window longer than gap", exprDur("cron(0 8/8 * * ? *)", "9h"), awsMin, fDur, false, "at most 8h"},
		{"cron hours window longer than shortest gap", exprDur("cron(0 2/10 * * ? *)", "5h"), awsMin, fDur, false, "at most 4h"},
		{"cron day window into next day", exprDur("cron(0 17 L * ? *)", "8h"), awsMin, fDur, false, "next UTC day: a window that opens at 17:00 can last at most 7h, not 8h"},
		{"cron day window 23 plus 2", exprDur("cron(0 23 ? * MON *)", "2h"), awsMin, fDur, false, "next UTC day"},
		{"cron minutes day window", exprDur("cron(30 22 * * ? *)", "2h"), demoMin, fDur, false, "opens at 22:30 can last at most 1h"},
		{"rate minutes window", exprDur("rate(5 minutes)", "1h"), demoMin, fDur, false, "windows can open 5 minutes apart, less than the shortest Duration (1h)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.Parse(tt.rules, tt.opts)
			if err == nil {
				t.Fatalf("Parse(%+v) = %v, want an error", tt.rules, s)
			}
			var re *schedule.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *RuleError", err, err)
			}
			if re.Field != tt.field || re.Constraint != tt.constraint {
				t.Errorf("Field, Constraint = %q, %v; want %q, %v", re.Field, re.Constraint, tt.field, tt.constraint)
			}
			if !strings.Contains(re.Message, tt.want) {
				t.Errorf("Message = %q, want it to contain %q", re.Message, tt.want)
			}
			if err.Error() != re.Message {
				t.Errorf("Error() = %q, want the Message", err.Error())
			}
			if tt.constraint && !strings.HasPrefix(re.Message, "1 validation error detected: Value at 'rotationRules.") {
				t.Errorf("constraint Message = %q, want AWS's validation form", re.Message)
			}
		})
	}
}

// TestParseErrorQuotesExpression checks that semantic errors name the
// expression so the user sees what was refused.
func TestParseErrorQuotesExpression(t *testing.T) {
	_, err := schedule.Parse(expr("cron(5 8 * * ? *)"), awsMin)
	want := "Invalid ScheduleExpression 'cron(5 8 * * ? *)': the Minutes field must be 0 because rotation windows start on the hour."
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

type nextCase struct {
	name       string
	rules      schedule.Rules
	opts       schedule.Options
	last, now  string // RFC 3339; last "" = never rotated
	start, end string
}

func runNext(t *testing.T, tests []nextCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.rules, tt.opts)
			var last time.Time
			if tt.last != "" {
				last = ts(t, tt.last)
			}
			now := ts(t, tt.now)
			got := s.Next(last, now)
			want := schedule.Window{Start: ts(t, tt.start), End: ts(t, tt.end)}
			if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
				t.Errorf("Next(%s, %s) = [%s, %s), want [%s, %s)", tt.last, tt.now,
					got.Start.Format(time.RFC3339), got.End.Format(time.RFC3339), tt.start, tt.end)
			}
			if got.Start.Location() != time.UTC || got.End.Location() != time.UTC {
				t.Errorf("window not in UTC: %v", got)
			}
			if nrd := s.NextRotationDate(last, now); !nrd.Equal(want.End.Add(-time.Second)) {
				t.Errorf("NextRotationDate = %s, want %s", nrd.Format(time.RFC3339), want.End.Add(-time.Second).Format(time.RFC3339))
			}
		})
	}
}

func TestNextRate(t *testing.T) {
	after := func(n int64) schedule.Rules { return schedule.Rules{AutomaticallyAfterDays: days(n)} }
	runNext(t, []nextCase{
		// Days: the window of the UTC day N days after the last rotation's day.
		{"10 days", expr("rate(10 days)"), awsMin, "2024-03-03T15:00:00Z", "2024-03-04T00:00:00Z", "2024-03-13T00:00:00Z", "2024-03-14T00:00:00Z"},
		{"1 day into leap day", exprDur("rate(1 day)", "3h"), awsMin, "2024-02-28T01:30:00Z", "2024-02-28T01:31:00Z", "2024-02-29T00:00:00Z", "2024-02-29T03:00:00Z"},
		{"2 days over a non-leap february", expr("rate(2 days)"), awsMin, "2023-02-27T12:00:00Z", "2023-02-27T12:00:00Z", "2023-03-01T00:00:00Z", "2023-03-02T00:00:00Z"},
		{"2 days over a leap february", expr("rate(2 days)"), awsMin, "2024-02-27T12:00:00Z", "2024-02-27T12:00:00Z", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"2 days over 2100, not a leap year", expr("rate(2 days)"), awsMin, "2100-02-27T12:00:00Z", "2100-02-27T12:00:00Z", "2100-03-01T00:00:00Z", "2100-03-02T00:00:00Z"},
		{"after days 30 over the year end", after(30), awsMin, "2024-12-15T10:00:00Z", "2024-12-15T10:05:00Z", "2025-01-14T00:00:00Z", "2025-01-15T00:00:00Z"},
		{"after days 1 at the year end", after(1), awsMin, "2024-12-31T05:00:00Z", "2024-12-31T05:00:00Z", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"},
		{"after days with duration", schedule.Rules{AutomaticallyAfterDays: days(7), Duration: "4h"}, awsMin, "2024-03-01T23:59:59Z", "2024-03-02T00:00:00Z", "2024-03-08T00:00:00Z", "2024-03-08T04:00:00Z"},
		{"rotated at midnight", expr("rate(1 day)"), awsMin, "2024-03-01T00:00:00Z", "2024-03-01T00:00:01Z", "2024-03-02T00:00:00Z", "2024-03-03T00:00:00Z"},
		{"last rotated in another zone", expr("rate(1 day)"), awsMin, "2024-03-10T02:00:00+05:00", "2024-03-09T22:00:00Z", "2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z"},
		{"clock skew: last after now", expr("rate(1 day)"), awsMin, "2024-03-10T10:00:00Z", "2024-03-09T10:00:00Z", "2024-03-11T00:00:00Z", "2024-03-12T00:00:00Z"},
		// Overdue: the window open now, or the next one.
		{"overdue day window open", expr("rate(1 day)"), awsMin, "2024-03-01T00:10:00Z", "2024-03-05T12:00:00Z", "2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z"},
		{"overdue day window closed", exprDur("rate(1 day)", "3h"), awsMin, "2024-03-01T00:10:00Z", "2024-03-05T12:00:00Z", "2024-03-06T00:00:00Z", "2024-03-06T03:00:00Z"},
		{"overdue at the window end", exprDur("rate(1 day)", "3h"), awsMin, "2024-03-01T00:10:00Z", "2024-03-05T03:00:00Z", "2024-03-06T00:00:00Z", "2024-03-06T03:00:00Z"},
		{"overdue a second before the end", exprDur("rate(1 day)", "3h"), awsMin, "2024-03-01T00:10:00Z", "2024-03-05T02:59:59Z", "2024-03-05T00:00:00Z", "2024-03-05T03:00:00Z"},
		{"overdue after years of downtime", after(30), awsMin, "2020-01-01T00:00:00Z", "2024-12-31T23:00:00Z", "2024-12-31T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"due today", expr("rate(10 days)"), awsMin, "2024-03-03T15:00:00Z", "2024-03-13T18:00:00Z", "2024-03-13T00:00:00Z", "2024-03-14T00:00:00Z"},
		// Never rotated: the first window starting at or after now.
		{"never, days", expr("rate(1 day)"), awsMin, "", "2024-03-05T12:00:00Z", "2024-03-06T00:00:00Z", "2024-03-07T00:00:00Z"},
		{"never, days, at midnight", expr("rate(30 days)"), awsMin, "", "2024-03-05T00:00:00Z", "2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z"},
		{"never, after days", after(90), awsMin, "", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"},
		// Hours: a grid anchored at midnight, the slot after the last one.
		{"4 hours", expr("rate(4 hours)"), awsMin, "2024-03-10T04:20:00Z", "2024-03-10T04:21:00Z", "2024-03-10T08:00:00Z", "2024-03-10T09:00:00Z"},
		{"4 hours window 4h across midnight", exprDur("rate(4 hours)", "4h"), awsMin, "2024-03-10T23:30:00Z", "2024-03-10T23:31:00Z", "2024-03-11T00:00:00Z", "2024-03-11T04:00:00Z"},
		{"12 hours over the year end", expr("rate(12 hours)"), awsMin, "2024-12-31T13:00:00Z", "2024-12-31T13:00:00Z", "2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z"},
		{"24 hours is a window of an hour", expr("rate(24 hours)"), awsMin, "2024-03-10T00:30:00Z", "2024-03-10T00:31:00Z", "2024-03-11T00:00:00Z", "2024-03-11T01:00:00Z"},
		{"7 hours keeps the epoch grid", expr("rate(7 hours)"), awsMin, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z", "2024-01-01T03:00:00Z"},
		{"6 hours overdue, window open", expr("rate(6 hours)"), awsMin, "2024-03-10T00:30:00Z", "2024-03-10T12:30:00Z", "2024-03-10T12:00:00Z", "2024-03-10T13:00:00Z"},
		{"6 hours overdue, window closed", expr("rate(6 hours)"), awsMin, "2024-03-10T00:30:00Z", "2024-03-10T13:30:00Z", "2024-03-10T18:00:00Z", "2024-03-10T19:00:00Z"},
		{"6 hours never", expr("rate(6 hours)"), awsMin, "", "2024-03-10T13:30:00Z", "2024-03-10T18:00:00Z", "2024-03-10T19:00:00Z"},
		{"6 hours never, just after a slot opened", expr("rate(6 hours)"), awsMin, "", "2024-03-10T12:00:01Z", "2024-03-10T18:00:00Z", "2024-03-10T19:00:00Z"},
		{"6 hours never, on the slot", expr("rate(6 hours)"), awsMin, "", "2024-03-10T12:00:00Z", "2024-03-10T12:00:00Z", "2024-03-10T13:00:00Z"},
		{"before 1970", expr("rate(6 hours)"), awsMin, "1969-12-31T13:00:00Z", "1969-12-31T13:00:00Z", "1969-12-31T18:00:00Z", "1969-12-31T19:00:00Z"},
		// Minute extension.
		{"5 minutes", expr("rate(5 minutes)"), demoMin, "2024-03-10T10:03:00Z", "2024-03-10T10:04:00Z", "2024-03-10T10:05:00Z", "2024-03-10T10:10:00Z"},
		{"90 minutes", expr("rate(90 minutes)"), demoMin, "2024-03-10T01:00:00Z", "2024-03-10T01:00:00Z", "2024-03-10T01:30:00Z", "2024-03-10T02:30:00Z"},
	})
}

func TestNextCron(t *testing.T) {
	runNext(t, []nextCase{
		// cron(0 8/8 * * ? *): 08:00 and 16:00, windows of an hour.
		{"8/8 next firing", expr("cron(0 8/8 * * ? *)"), awsMin, "2024-03-10T08:20:00Z", "2024-03-10T08:25:00Z", "2024-03-10T16:00:00Z", "2024-03-10T17:00:00Z"},
		{"8/8 next day", expr("cron(0 8/8 * * ? *)"), awsMin, "2024-03-10T16:10:00Z", "2024-03-10T16:15:00Z", "2024-03-11T08:00:00Z", "2024-03-11T09:00:00Z"},
		{"8/8 open window not yet used", expr("cron(0 8/8 * * ? *)"), awsMin, "2024-03-10T08:20:00Z", "2024-03-10T16:30:00Z", "2024-03-10T16:00:00Z", "2024-03-10T17:00:00Z"},
		{"8/8 rotated at the window start", expr("cron(0 8/8 * * ? *)"), awsMin, "2024-03-10T16:00:00Z", "2024-03-10T16:00:00Z", "2024-03-11T08:00:00Z", "2024-03-11T09:00:00Z"},
		{"8/8 never", expr("cron(0 8/8 * * ? *)"), awsMin, "", "2024-03-10T08:30:00Z", "2024-03-10T16:00:00Z", "2024-03-10T17:00:00Z"},
		{"8/8 never, at a firing", expr("cron(0 8/8 * * ? *)"), awsMin, "", "2024-03-10T08:00:00Z", "2024-03-10T08:00:00Z", "2024-03-10T09:00:00Z"},
		{"8/8 with 8h windows", exprDur("cron(0 8/8 * * ? *)", "8h"), awsMin, "2024-03-10T16:10:00Z", "2024-03-10T16:15:00Z", "2024-03-11T08:00:00Z", "2024-03-11T16:00:00Z"},
		{"/8 from midnight", expr("cron(0 /8 * * ? *)"), awsMin, "2024-03-10T16:10:00Z", "2024-03-10T16:15:00Z", "2024-03-11T00:00:00Z", "2024-03-11T01:00:00Z"},
		{"2/10 restarts each day", expr("cron(0 2/10 * * ? *)"), awsMin, "2024-03-10T22:30:00Z", "2024-03-10T22:30:00Z", "2024-03-11T02:00:00Z", "2024-03-11T03:00:00Z"},
		{"4/12 window 12h crosses midnight", exprDur("cron(0 4/12 * * ? *)", "12h"), awsMin, "2024-12-31T04:30:00Z", "2024-12-31T05:00:00Z", "2024-12-31T16:00:00Z", "2025-01-01T04:00:00Z"},
		{"4/12 window 12h still open after midnight", exprDur("cron(0 4/12 * * ? *)", "12h"), awsMin, "2024-12-31T04:30:00Z", "2025-01-01T02:00:00Z", "2024-12-31T16:00:00Z", "2025-01-01T04:00:00Z"},
		// cron(0 1 ? 1/3 SUN#1 *): first Sunday of Jan, Apr, Jul, Oct at 01:00, window to midnight.
		{"quarterly first sunday", expr("cron(0 1 ? 1/3 SUN#1 *)"), awsMin, "2024-01-07T03:00:00Z", "2024-01-07T03:00:00Z", "2024-04-07T01:00:00Z", "2024-04-08T00:00:00Z"},
		{"quarterly over the year end", expr("cron(0 1 ? 1/3 SUN#1 *)"), awsMin, "2024-10-06T01:30:00Z", "2024-10-06T02:00:00Z", "2025-01-05T01:00:00Z", "2025-01-06T00:00:00Z"},
		{"quarterly on the 7th", expr("cron(0 1 ? 1/3 SUN#1 *)"), awsMin, "2025-01-05T01:30:00Z", "2025-01-05T02:00:00Z", "2025-04-06T01:00:00Z", "2025-04-07T00:00:00Z"},
		// cron(0 17 L * ? *): last day of the month at 17:00.
		{"last day into a leap february", expr("cron(0 17 L * ? *)"), awsMin, "2024-01-31T17:05:00Z", "2024-01-31T17:05:00Z", "2024-02-29T17:00:00Z", "2024-03-01T00:00:00Z"},
		{"last day of a plain february", expr("cron(0 17 L * ? *)"), awsMin, "2023-01-31T18:00:00Z", "2023-01-31T18:00:00Z", "2023-02-28T17:00:00Z", "2023-03-01T00:00:00Z"},
		{"last day of february 2100", expr("cron(0 17 L * ? *)"), awsMin, "2100-01-31T17:30:00Z", "2100-01-31T17:30:00Z", "2100-02-28T17:00:00Z", "2100-03-01T00:00:00Z"},
		{"last day of february 2000", expr("cron(0 17 L * ? *)"), awsMin, "2000-01-31T17:30:00Z", "2000-01-31T17:30:00Z", "2000-02-29T17:00:00Z", "2000-03-01T00:00:00Z"},
		{"last day over the year end", expr("cron(0 17 L * ? *)"), awsMin, "2024-12-31T17:00:00Z", "2024-12-31T17:00:00Z", "2025-01-31T17:00:00Z", "2025-02-01T00:00:00Z"},
		{"last day of a 30-day month", exprDur("cron(0 17 L * ? *)", "7h"), awsMin, "2024-03-31T17:00:00Z", "2024-04-01T00:00:00Z", "2024-04-30T17:00:00Z", "2024-05-01T00:00:00Z"},
		// cron(0 4 ? * MON-FRI *): weekdays at 04:00.
		{"weekdays friday to monday", expr("cron(0 4 ? * MON-FRI *)"), awsMin, "2024-03-08T04:10:00Z", "2024-03-08T04:10:00Z", "2024-03-11T04:00:00Z", "2024-03-12T00:00:00Z"},
		{"weekdays over the year end", expr("cron(0 4 ? * MON-FRI *)"), awsMin, "2024-12-31T04:30:00Z", "2024-12-31T05:00:00Z", "2025-01-01T04:00:00Z", "2025-01-02T00:00:00Z"},
		{"weekdays window 2h", exprDur("cron(0 4 ? * MON-FRI *)", "2h"), awsMin, "2024-03-08T04:10:00Z", "2024-03-08T04:10:00Z", "2024-03-11T04:00:00Z", "2024-03-11T06:00:00Z"},
		// Overdue cron windows: the one still open, else the next firing.
		{"overdue, window open", expr("cron(0 8 ? * MON-FRI *)"), awsMin, "2024-03-01T08:30:00Z", "2024-03-11T09:00:00Z", "2024-03-11T08:00:00Z", "2024-03-12T00:00:00Z"},
		{"overdue, window closed", exprDur("cron(0 8 ? * MON-FRI *)", "1h"), awsMin, "2024-03-01T08:30:00Z", "2024-03-11T09:00:00Z", "2024-03-12T08:00:00Z", "2024-03-12T09:00:00Z"},
		{"never, day window already open", expr("cron(0 8 ? * MON-FRI *)"), awsMin, "", "2024-03-11T09:00:00Z", "2024-03-12T08:00:00Z", "2024-03-13T00:00:00Z"},
		// More day rules.
		{"first sunday at midnight", expr("cron(0 0 ? * SUN#1 *)"), awsMin, "2024-08-04T00:10:00Z", "2024-08-04T00:10:00Z", "2024-09-01T00:00:00Z", "2024-09-02T00:00:00Z"},
		{"1st and 15th", expr("cron(0 16 1,15 * ? *)"), awsMin, "2024-02-15T16:30:00Z", "2024-02-15T16:30:00Z", "2024-03-01T16:00:00Z", "2024-03-02T00:00:00Z"},
		{"last friday, leap february", expr("cron(0 0 ? * 6L *)"), awsMin, "2024-01-26T00:30:00Z", "2024-01-26T00:30:00Z", "2024-02-23T00:00:00Z", "2024-02-24T00:00:00Z"},
		{"last friday by name", expr("cron(0 0 ? * FRIL *)"), awsMin, "2024-02-23T00:30:00Z", "2024-02-23T00:30:00Z", "2024-03-29T00:00:00Z", "2024-03-30T00:00:00Z"},
		{"SUNL in day-of-month", expr("cron(0 0 SUNL * ? *)"), awsMin, "2024-02-25T00:30:00Z", "2024-02-25T00:30:00Z", "2024-03-31T00:00:00Z", "2024-04-01T00:00:00Z"},
		{"L alone is saturday", expr("cron(0 0 ? * L *)"), awsMin, "2024-03-09T00:30:00Z", "2024-03-09T00:30:00Z", "2024-03-16T00:00:00Z", "2024-03-17T00:00:00Z"},
		{"fifth thursday", expr("cron(0 0 ? * THU#5 *)"), awsMin, "2024-02-29T00:30:00Z", "2024-02-29T00:30:00Z", "2024-05-30T00:00:00Z", "2024-05-31T00:00:00Z"},
		{"yearly first monday of january", expr("cron(0 0 ? JAN MON#1 *)"), awsMin, "2024-01-01T00:30:00Z", "2024-01-01T00:30:00Z", "2025-01-06T00:00:00Z", "2025-01-07T00:00:00Z"},
		{"31st skips short months", expr("cron(0 0 31 * ? *)"), awsMin, "2024-01-31T00:30:00Z", "2024-01-31T00:30:00Z", "2024-03-31T00:00:00Z", "2024-04-01T00:00:00Z"},
		// Minute extension.
		{"every 5 minutes", expr("cron(*/5 * * * ? *)"), demoMin, "2024-03-10T10:03:00Z", "2024-03-10T10:04:00Z", "2024-03-10T10:05:00Z", "2024-03-10T10:10:00Z"},
		{"every 5 minutes over the hour", expr("cron(*/5 * * * ? *)"), demoMin, "2024-12-31T23:55:10Z", "2024-12-31T23:56:00Z", "2025-01-01T00:00:00Z", "2025-01-01T00:05:00Z"},
		{"daily at 09:30", expr("cron(30 9 * * ? *)"), demoMin, "2024-03-10T09:31:00Z", "2024-03-10T09:31:00Z", "2024-03-11T09:30:00Z", "2024-03-12T00:00:00Z"},
	})
}

// oracle describes a cron expression independently of the parser: whether a
// window opens at t (a whole hour) and whether it is a schedule in days.
type oracle struct {
	expr  string
	fires func(t time.Time) bool
	daily bool
}

var oracles = []oracle{
	{"cron(0 8/8 * * ? *)", func(t time.Time) bool { return t.Hour() == 8 || t.Hour() == 16 }, false},
	{"cron(0 2/10 * * ? *)", func(t time.Time) bool { return t.Hour()%10 == 2 }, false},
	{"cron(0 1 ? 1/3 SUN#1 *)", func(t time.Time) bool {
		return t.Hour() == 1 && t.Weekday() == time.Sunday && t.Day() <= 7 && t.Month()%3 == 1
	}, true},
	{"cron(0 17 L * ? *)", func(t time.Time) bool { return t.Hour() == 17 && t.AddDate(0, 0, 1).Day() == 1 }, true},
	{"cron(0 4 ? * MON-FRI *)", func(t time.Time) bool {
		return t.Hour() == 4 && t.Weekday() >= time.Monday && t.Weekday() <= time.Friday
	}, true},
	{"cron(0 0 ? * 6L *)", func(t time.Time) bool {
		return t.Hour() == 0 && t.Weekday() == time.Friday && t.AddDate(0, 0, 7).Month() != t.Month()
	}, true},
	{"cron(0 3 1/10 * ? *)", func(t time.Time) bool { return t.Hour() == 3 && t.Day()%10 == 1 }, true},
	{"cron(0 9 ? */2 2#2 *)", func(t time.Time) bool {
		return t.Hour() == 9 && t.Month()%2 == 1 && t.Weekday() == time.Monday && t.Day() > 7 && t.Day() <= 14
	}, true},
	{"cron(0 12 29-31 JAN,MAR-MAY ? *)", func(t time.Time) bool {
		m := t.Month()
		return t.Hour() == 12 && t.Day() >= 29 && (m == time.January || m >= time.March && m <= time.May)
	}, true},
	{"cron(0 6 ? FEB SUNL *)", func(t time.Time) bool {
		return t.Hour() == 6 && t.Month() == time.February && t.Weekday() == time.Sunday && t.AddDate(0, 0, 7).Month() != t.Month()
	}, true},
	{"cron(0 6,13,20 ? * TUE,SAT *)", func(t time.Time) bool {
		h, w := t.Hour(), t.Weekday()
		return (h == 6 || h == 13 || h == 20) && (w == time.Tuesday || w == time.Saturday)
	}, false},
}

// TestCronAgainstOracle compares Next with a brute-force hour-by-hour search
// at random times from 1995 to 2105, leap years and 2100 included.
func TestCronAgainstOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lo, hi := ts(t, "1995-01-01T00:00:00Z").Unix(), ts(t, "2105-01-01T00:00:00Z").Unix()
	for _, o := range oracles {
		t.Run(o.expr, func(t *testing.T) {
			s := mustParse(t, expr(o.expr), awsMin)
			windowAt := func(start time.Time) schedule.Window {
				if o.daily {
					return schedule.Window{Start: start, End: start.Truncate(24 * time.Hour).Add(24 * time.Hour)}
				}
				return schedule.Window{Start: start, End: start.Add(time.Hour)}
			}
			for range 300 {
				now := time.Unix(lo+r.Int64N(hi-lo), 0).UTC()
				var last time.Time
				switch r.IntN(3) {
				case 0: // never rotated
				case 1:
					last = now.Add(-time.Duration(r.Int64N(int64(400 * 24 * time.Hour))))
				case 2:
					last = now.Add(-time.Duration(r.Int64N(int64(6 * time.Hour))))
				}
				from := now.Add(-24 * time.Hour).Truncate(time.Hour)
				var want schedule.Window
				for h := from; ; h = h.Add(time.Hour) {
					if !o.fires(h) || last.IsZero() && h.Before(now) || !last.IsZero() && !h.After(last) {
						continue
					}
					if w := windowAt(h); w.End.After(now) {
						want = w
						break
					}
				}
				if got := s.Next(last, now); got != want {
					t.Fatalf("Next(%v, %v) = %v, want %v", last, now, got, want)
				}
			}
		})
	}
}

// TestNextChains rotates repeatedly at the picked time and checks the
// spacing of consecutive windows.
func TestNextChains(t *testing.T) {
	tests := []struct {
		rules schedule.Rules
		next  func(time.Time) time.Time // the window start after the one starting at t
	}{
		{expr("rate(1 day)"), func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{expr("rate(30 days)"), func(t time.Time) time.Time { return t.AddDate(0, 0, 30) }},
		{schedule.Rules{AutomaticallyAfterDays: days(7), Duration: "2h"}, func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }},
		{expr("rate(4 hours)"), func(t time.Time) time.Time { return t.Add(4 * time.Hour) }},
		{exprDur("rate(5 hours)", "5h"), func(t time.Time) time.Time { return t.Add(5 * time.Hour) }},
		{expr("rate(36 hours)"), func(t time.Time) time.Time { return t.Add(36 * time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.rules.ScheduleExpression, func(t *testing.T) {
			s := mustParse(t, tt.rules, awsMin)
			r := rand.New(rand.NewPCG(7, 7))
			now := ts(t, "2023-12-30T07:00:00Z")
			w := s.Next(time.Time{}, now)
			for range 500 {
				at := w.PickStart(r.Int64N)
				next := s.Next(at, at)
				if want := tt.next(w.Start); !next.Start.Equal(want) {
					t.Fatalf("after rotating at %v in %v: next window starts %v, want %v", at, w, next.Start, want)
				}
				w = next
			}
		})
	}
}

func TestPickStart(t *testing.T) {
	start := ts(t, "2024-03-10T00:00:00Z")
	for _, length := range []time.Duration{0, time.Second, 2 * time.Second, time.Minute, 5 * time.Minute, time.Hour, 3 * time.Hour, 23 * time.Hour, 24 * time.Hour} {
		w := schedule.Window{Start: start, End: start.Add(length)}
		reserve := min(length/2, time.Hour)
		limit := w.End.Add(-reserve) // picks are before limit, or Start for tiny windows
		var lowest, highest time.Duration = length, -1
		for seed := range uint64(5000) {
			r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			got := w.PickStart(r.Int64N)
			if got.Before(w.Start) || (got.After(w.Start) && !got.Before(limit)) {
				t.Fatalf("length %v seed %d: PickStart = %v, outside [%v, %v)", length, seed, got, w.Start, limit)
			}
			if got.Sub(w.Start)%time.Second != 0 {
				t.Fatalf("length %v: PickStart = %v, not a whole second", length, got)
			}
			lowest, highest = min(lowest, got.Sub(start)), max(highest, got.Sub(start))
		}
		// Over 5000 picks the spread reaches both ends of the allowed span.
		if span := length - reserve; span >= time.Minute && (lowest > span/50 || highest < span-span/50) {
			t.Errorf("length %v: picks span [%v, %v], want close to [0, %v)", length, lowest, highest, span)
		}
	}
}

func TestPickStartSources(t *testing.T) {
	w := schedule.Window{Start: ts(t, "2024-03-10T08:00:00Z"), End: ts(t, "2024-03-10T09:00:00Z")}
	limit := w.Start.Add(30 * time.Minute)
	for name, f := range map[string]func(int64) int64{
		"nil (global source)": nil,
		"negative":            func(int64) int64 { return -7 },
		"too large":           func(n int64) int64 { return n + 3 },
		"zero":                func(int64) int64 { return 0 },
	} {
		for range 100 {
			if got := w.PickStart(f); got.Before(w.Start) || !got.Before(limit) {
				t.Fatalf("%s: PickStart = %v, outside [%v, %v)", name, got, w.Start, limit)
			}
		}
	}
}

func TestWindowFrom(t *testing.T) {
	w := schedule.Window{Start: ts(t, "2024-03-10T08:00:00Z"), End: ts(t, "2024-03-10T09:00:00Z")}
	tests := []struct {
		at, start, end string
	}{
		{"2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z", "2024-03-10T09:00:00Z"},
		{"2024-03-10T08:00:00Z", "2024-03-10T08:00:00Z", "2024-03-10T09:00:00Z"},
		{"2024-03-10T08:40:00Z", "2024-03-10T08:40:00Z", "2024-03-10T09:00:00Z"},
		{"2024-03-10T09:00:00Z", "2024-03-10T09:00:00Z", "2024-03-10T09:00:00Z"},
		{"2024-03-10T12:00:00Z", "2024-03-10T09:00:00Z", "2024-03-10T09:00:00Z"},
	}
	for _, tt := range tests {
		got := w.From(ts(t, tt.at))
		if !got.Start.Equal(ts(t, tt.start)) || !got.End.Equal(ts(t, tt.end)) {
			t.Errorf("From(%s) = %v, want [%s, %s)", tt.at, got, tt.start, tt.end)
		}
	}
	// An overdue window, clipped to now, spreads over the time left.
	now := ts(t, "2024-03-10T08:40:00Z")
	if got := w.From(now).PickStart(rand.New(rand.NewPCG(1, 1)).Int64N); got.Before(now) || !got.Before(w.End) {
		t.Errorf("PickStart after From = %v, want in [%v, %v)", got, now, w.End)
	}
}
