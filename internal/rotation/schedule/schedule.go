package schedule

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultMinInterval is AWS's minimum time between rotations ("You can rotate
// a secret as often as every four hours").
const DefaultMinInterval = 4 * time.Hour

// Limits of the service model (RotationRulesType) and the user guide.
const (
	minAfterDays     = 1
	maxAfterDays     = 1000 // model: AutomaticallyAfterDays 1–1000
	maxRateDays      = 999  // user guide: "The maximum rotation period is 999 days"
	maxExpressionLen = 256
	minDurationLen   = 2 // model: Duration is 2–3 characters
	maxDurationLen   = 3
	minWindow        = time.Hour
	maxWindow        = 24 * time.Hour
	day              = 24 * time.Hour
)

// Rules is a secret's rotation configuration as the AWS API carries it
// (RotationRulesType). An empty string means the member is absent.
type Rules struct {
	AutomaticallyAfterDays *int64
	ScheduleExpression     string
	Duration               string
}

// Options tune Parse.
type Options struct {
	// MinInterval is the shortest time allowed between two rotation windows;
	// zero or less means DefaultMinInterval (AWS's four hours). A server flag
	// lowers it for demonstrations and tests. Below one hour it also unlocks
	// Rotor's minute extension (see the package documentation).
	MinInterval time.Duration
}

func (o Options) minInterval() time.Duration {
	if o.MinInterval <= 0 {
		return DefaultMinInterval
	}
	return o.MinInterval
}

// Schedule is a parsed, validated rotation schedule. It is immutable and safe
// for concurrent use.
type Schedule struct {
	rules Rules

	// Rate schedules (rate() and AutomaticallyAfterDays): windows open at
	// the start of a slot. daily: slots are UTC days and the next window is
	// steps days after the last rotation's day. Otherwise slots are period
	// long, on a grid anchored at 1970-01-01T00:00Z, and steps is 1.
	period time.Duration
	daily  bool
	steps  int

	cron *cron // cron() schedules

	window    time.Duration // the Duration member; 0 when absent
	defWindow time.Duration // the default window; 0 means "to the end of the UTC day"
	gap       time.Duration // the shortest time between two window starts
}

// Window is a rotation window: rotation should start at or after Start and
// before End. Times are UTC.
type Window struct {
	Start, End time.Time
}

// Parse validates r and returns its schedule. Every failure is a *RuleError.
func Parse(r Rules, opts Options) (*Schedule, error) {
	if err := checkMembers(r); err != nil {
		return nil, err
	}
	if r.AutomaticallyAfterDays != nil {
		r.AutomaticallyAfterDays = new(*r.AutomaticallyAfterDays) // the caller keeps theirs
	}
	minInterval := opts.minInterval()
	s := &Schedule{rules: r}
	if r.AutomaticallyAfterDays != nil {
		s.setDaily(int(*r.AutomaticallyAfterDays))
	} else if err := s.parseExpression(r.ScheduleExpression, minInterval < time.Hour); err != nil {
		return nil, err
	}
	if r.Duration != "" {
		s.window = time.Duration(mustAtoi(strings.TrimSuffix(r.Duration, "h"))) * time.Hour
	}
	if s.gap < minInterval {
		field := FieldScheduleExpression
		if r.AutomaticallyAfterDays != nil {
			field = FieldAutomaticallyAfterDays
		}
		return nil, paramError(field, "The rotation schedule is too frequent: rotations can be %s apart, but the minimum time between rotations is %s.", human(s.gap), human(minInterval))
	}
	if err := s.checkWindow(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkMembers applies the model's constraints and the rule that exactly one
// of AutomaticallyAfterDays and ScheduleExpression is given.
func checkMembers(r Rules) *RuleError {
	switch {
	case r.AutomaticallyAfterDays != nil && r.ScheduleExpression != "":
		return paramError(FieldRules, "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules. Specify one of them.")
	case r.AutomaticallyAfterDays == nil && r.ScheduleExpression == "":
		return paramError(FieldRules, "RotationRules must specify either AutomaticallyAfterDays or ScheduleExpression.")
	}
	if p := r.AutomaticallyAfterDays; p != nil {
		switch {
		case *p < minAfterDays:
			return constraintError(FieldAutomaticallyAfterDays, fmt.Sprintf("Member must have value greater than or equal to %d", minAfterDays))
		case *p > maxAfterDays:
			return constraintError(FieldAutomaticallyAfterDays, fmt.Sprintf("Member must have value less than or equal to %d", maxAfterDays))
		}
	}
	if e := r.ScheduleExpression; e != "" {
		if utf8.RuneCountInString(e) > maxExpressionLen {
			return constraintError(FieldScheduleExpression, fmt.Sprintf("Member must have length less than or equal to %d", maxExpressionLen))
		}
		if !expressionChars(e) {
			return constraintError(FieldScheduleExpression, `Member must satisfy regular expression pattern: [0-9A-Za-z\(\)#\?\*\-\/, ]+`)
		}
	}
	if d := r.Duration; d != "" {
		switch n := utf8.RuneCountInString(d); {
		case n < minDurationLen:
			return constraintError(FieldDuration, fmt.Sprintf("Member must have length greater than or equal to %d", minDurationLen))
		case n > maxDurationLen:
			return constraintError(FieldDuration, fmt.Sprintf("Member must have length less than or equal to %d", maxDurationLen))
		}
		if digits := strings.TrimSuffix(d, "h"); len(digits) == len(d) || !allDigits(digits) {
			return constraintError(FieldDuration, "Member must satisfy regular expression pattern: [0-9]+h")
		}
		if n := time.Duration(mustAtoi(strings.TrimSuffix(d, "h"))) * time.Hour; n < minWindow || n > maxWindow {
			return paramError(FieldDuration, "The rotation window Duration must be between 1h and 24h.")
		}
	}
	return nil
}

// expressionChars reports whether s matches the model's pattern
// [0-9A-Za-z\(\)#\?\*\-\/, ]+.
func expressionChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case strings.IndexByte("()#?*-/, ", c) >= 0:
		default:
			return false
		}
	}
	return len(s) > 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// mustAtoi converts a digit string already checked to be short.
func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func (s *Schedule) setDaily(days int) {
	s.daily = true
	s.steps = days
	s.period = day
	s.gap = time.Duration(days) * day
}

func (s *Schedule) parseExpression(expr string, extended bool) *RuleError {
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		return s.parseRate(expr, extended)
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		c, err := parseCron(expr, extended)
		if err != nil {
			return err
		}
		s.cron = c
		s.gap = c.gap
		if len(c.times) > 1 {
			// A schedule in hours: the default window closes after an
			// hour, or sooner when windows open more often (extension).
			s.defWindow = min(time.Hour, c.gap)
		}
		return nil
	}
	return exprError(expr, "use a rate() or cron() expression, for example rate(30 days) or cron(0 8 ? * MON *)")
}

// parseRate parses rate(Value Unit). As EventBridge requires, a Value of 1
// takes a singular Unit and any other Value a plural one.
func (s *Schedule) parseRate(expr string, extended bool) *RuleError {
	f := strings.Fields(expr[len("rate(") : len(expr)-1])
	if len(f) != 2 {
		return exprError(expr, "a rate expression is rate(Value Unit), for example rate(4 hours) or rate(10 days)")
	}
	units := "hour, hours, day or days"
	if extended {
		units = "minute, minutes, hour, hours, day or days"
	}
	if !allDigits(f[0]) {
		return exprError(expr, "the rate Value must be a positive whole number")
	}
	n, err := strconv.Atoi(f[0])
	switch {
	case err != nil:
		return exprError(expr, "the maximum rotation period is %d days", maxRateDays)
	case n < 1:
		return exprError(expr, "the rate Value must be a positive whole number")
	}
	unit, plural := strings.CutSuffix(f[1], "s")
	var size time.Duration
	switch unit {
	case "day":
		size = day
	case "hour":
		size = time.Hour
	case "minute":
		if extended {
			size = time.Minute
		}
	}
	if size == 0 {
		return exprError(expr, "the rate Unit must be %s", units)
	}
	if plural != (n > 1) {
		want := unit
		if n > 1 {
			want += "s"
		}
		return exprError(expr, "use rate(%d %s): the Unit is singular for a Value of 1 and plural otherwise", n, want)
	}
	if limit := maxRateDays * day; n > int(limit/size) {
		return exprError(expr, "the maximum rotation period is %d days", maxRateDays)
	}
	if size == day {
		s.setDaily(n)
		return nil
	}
	s.period = time.Duration(n) * size
	s.steps = 1
	s.gap = s.period
	s.defWindow = min(time.Hour, s.period)
	return nil
}

// checkWindow refuses a Duration that would reach into the next window, and
// for schedules in days one that would reach into the next UTC day.
func (s *Schedule) checkWindow() *RuleError {
	if s.window == 0 {
		return nil
	}
	if s.daily || (s.cron != nil && len(s.cron.times) == 1) {
		// A schedule in days: start hour + window <= 24 hours.
		opens := time.Duration(0)
		if s.cron != nil {
			opens = time.Duration(s.cron.times[0]) * time.Minute
		}
		if opens+s.window > day {
			return paramError(FieldDuration, "The rotation window must not extend into the next UTC day: a window that opens at %02d:%02d can last at most %s, not %s.",
				int(opens.Hours()), int(opens.Minutes())%60, hours(day-opens), s.rules.Duration)
		}
		return nil
	}
	if s.window > s.gap && s.gap < minWindow {
		return paramError(FieldDuration, "The rotation window must not extend into the next rotation window: windows can open %s apart, less than the shortest Duration (1h). Leave Duration out.", human(s.gap))
	}
	if s.window > s.gap {
		return paramError(FieldDuration, "The rotation window must not extend into the next rotation window: windows can open %s apart, so Duration can be at most %s, not %s.",
			human(s.gap), hours(s.gap), s.rules.Duration)
	}
	return nil
}

// hours spells the longest whole-hour Duration not above d.
func hours(d time.Duration) string { return strconv.Itoa(int(d/time.Hour)) + "h" }

// human spells d for messages: "4 hours", "1 day", "5 minutes".
func human(d time.Duration) string {
	unit, size := "", time.Duration(0)
	switch {
	case d >= day && d%day == 0:
		unit, size = "day", day
	case d >= time.Hour && d%time.Hour == 0:
		unit, size = "hour", time.Hour
	case d >= time.Minute && d%time.Minute == 0:
		unit, size = "minute", time.Minute
	default:
		return d.String()
	}
	n := int64(d / size)
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// Rules returns the rules the schedule was parsed from, as given, for
// storage: Parse(s.Rules(), opts) yields an equivalent schedule.
func (s *Schedule) Rules() Rules {
	r := s.rules
	if r.AutomaticallyAfterDays != nil {
		r.AutomaticallyAfterDays = new(*r.AutomaticallyAfterDays)
	}
	return r
}

// String describes the schedule in the API's terms, for logs and the CLI:
// "ScheduleExpression=rate(30 days) Duration=3h",
// "AutomaticallyAfterDays=30".
func (s *Schedule) String() string {
	var b strings.Builder
	if s.rules.AutomaticallyAfterDays != nil {
		fmt.Fprintf(&b, "AutomaticallyAfterDays=%d", *s.rules.AutomaticallyAfterDays)
	} else {
		b.WriteString("ScheduleExpression=" + s.rules.ScheduleExpression)
	}
	if s.rules.Duration != "" {
		b.WriteString(" Duration=" + s.rules.Duration)
	}
	return b.String()
}

// Interval is the shortest time between the starts of two consecutive
// windows: exact for rate() and AutomaticallyAfterDays, the shortest gap
// between two firings for cron(). It is what the minimum interval is checked
// against; use it for sanity checks, not to compute dates.
func (s *Schedule) Interval() time.Duration { return s.gap }

// Next returns the rotation window a secret last rotated at lastRotated
// (zero if never) should rotate in, as seen at now. The window always ends
// after now and, when lastRotated is set, starts after it.
//
//   - Never rotated: the first window that starts at or after now.
//   - rate(N days) and AutomaticallyAfterDays N: the window of the UTC day N
//     days after lastRotated's day; rate(N hours): the window of the slot
//     after lastRotated's slot. If that window has already closed (rotation
//     is overdue, for example after downtime), the window open at now, or
//     else the next one, so the secret rotates soon.
//   - cron(): the first window that opens after lastRotated and closes after
//     now. A window closed while Rotor was down is not made up for: the
//     schedule is fixed, as AWS's is.
func (s *Schedule) Next(lastRotated, now time.Time) Window {
	now = now.UTC()
	if !lastRotated.IsZero() {
		lastRotated = lastRotated.UTC()
	}
	if s.cron != nil {
		return s.cronNext(lastRotated, now)
	}
	return s.rateNext(lastRotated, now)
}

// NextRotationDate is what DescribeSecret reports as NextRotationDate: the
// last whole second of Next's window. AWS shows day windows ending at
// 23:59:59 and documents the date as "on or before" which rotation happens.
func (s *Schedule) NextRotationDate(lastRotated, now time.Time) time.Time {
	return s.Next(lastRotated, now).End.Add(-time.Second)
}

// windowAt returns the window that opens at start.
func (s *Schedule) windowAt(start time.Time) Window {
	d := s.window
	if d == 0 {
		d = s.defWindow
	}
	if d == 0 {
		y, m, dd := start.Date()
		return Window{start, time.Date(y, m, dd+1, 0, 0, 0, 0, time.UTC)}
	}
	return Window{start, start.Add(d)}
}

// slot returns the start of the rate slot holding t.
func (s *Schedule) slot(t time.Time) time.Time {
	if s.daily {
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	p := int64(s.period / time.Second)
	u := t.Unix()
	q := u / p
	if u%p < 0 {
		q--
	}
	return time.Unix(q*p, 0).UTC()
}

// advance returns the start of the slot n slots after the one starting at t.
func (s *Schedule) advance(t time.Time, n int) time.Time {
	if s.daily {
		y, m, d := t.Date()
		return time.Date(y, m, d+n, 0, 0, 0, 0, time.UTC)
	}
	return t.Add(time.Duration(n) * s.period)
}

func (s *Schedule) rateNext(last, now time.Time) Window {
	if last.IsZero() {
		start := s.slot(now)
		if start.Before(now) {
			start = s.advance(start, 1)
		}
		return s.windowAt(start)
	}
	if w := s.windowAt(s.advance(s.slot(last), s.steps)); w.End.After(now) {
		return w
	}
	// Overdue: the window open now, or the next one.
	start := s.slot(now)
	if w := s.windowAt(start); w.End.After(now) {
		return w
	}
	return s.windowAt(s.advance(start, 1))
}

// searchDays bounds the cron search. Parse accepts only schedules that fire
// at least every 53 weeks, so a firing is always found far sooner.
const searchDays = 8 * 366

func (s *Schedule) cronNext(last, now time.Time) Window {
	never := last.IsZero()
	// A window still open at now opened at most a day before it.
	from := now.Add(-day)
	if never {
		from = now
	} else if last.After(from) {
		from = last
	}
	c := civilOf(from)
	for range searchDays {
		if s.cron.matchDay(c) {
			for _, m := range s.cron.times {
				start := c.at(m)
				if never && start.Before(now) || !never && !start.After(last) {
					continue
				}
				if w := s.windowAt(start); w.End.After(now) {
					return w
				}
			}
		}
		c.next()
	}
	// Not reached for a schedule Parse accepted; keep Next's contract anyway.
	return s.windowAt(c.at(s.cron.times[0]))
}

// From returns the part of w from t on: w itself if t is before w.Start,
// and an empty window (Start == End) if t is at or after w.End. A scheduler
// uses it to spread an overdue or already open window over the time left.
func (w Window) From(t time.Time) Window {
	switch {
	case !t.After(w.Start):
		return w
	case !t.Before(w.End):
		return Window{w.End, w.End}
	}
	return Window{t.UTC(), w.End}
}

// PickStart picks when to start rotating in w, uniformly to the second over
// the window less a reserve at its end for the rotation to finish and be
// retried: the reserve is half the window, at most one hour (a 1-hour window
// starts in its first 30 minutes, a 24-hour one in its first 23 hours). AWS
// likewise rotates "at any time during the window", spreading secrets out.
//
// int64n returns a uniform number in [0, n), as math/rand/v2's Int64N does;
// nil means math/rand/v2's global source. Pass a seeded generator's Int64N
// for reproducible picks.
func (w Window) PickStart(int64n func(n int64) int64) time.Time {
	length := w.End.Sub(w.Start)
	reserve := min(length/2, time.Hour)
	span := int64((length - reserve) / time.Second)
	if span <= 0 {
		return w.Start
	}
	if int64n == nil {
		int64n = rand.Int64N
	}
	off := int64n(span) % span
	if off < 0 {
		off += span
	}
	return w.Start.Add(time.Duration(off) * time.Second)
}
