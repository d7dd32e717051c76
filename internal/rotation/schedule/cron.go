package schedule

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dayRule is how a cron expression picks its days.
type dayRule uint8

const (
	byMonthDay    dayRule = iota // days of the month, or the last day (L)
	byWeekday                    // days of the week
	byNthWeekday                 // the nth given weekday of the month (TUE#3)
	byLastWeekday                // the last given weekday of the month (FRIL, 6L)
)

// cron is a parsed AWS cron() expression.
type cron struct {
	months   uint16 // bit m set: month m (1–12) matches
	rule     dayRule
	days     uint32 // byMonthDay: bit d set: day d (1–31) matches
	lastDay  bool   // byMonthDay: the last day of the month matches
	weekdays uint8  // byWeekday: bit w set: weekday w (1 = SUN … 7 = SAT) matches
	weekday  int    // byNthWeekday, byLastWeekday
	nth      int    // byNthWeekday: 1–5
	times    []int  // minutes after midnight at which windows open, ascending
	gap      time.Duration
}

// field describes one cron field's values.
type field struct {
	name     string
	min, max int
	names    []string // names[i] spells the value min+i
}

var (
	minutesField = field{name: "Minutes", max: 59}
	hoursField   = field{name: "Hours", max: 23}
	domField     = field{name: "Day-of-month", min: 1, max: 31}
	monthField   = field{name: "Month", min: 1, max: 12,
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}}
	dowField = field{name: "Day-of-week", min: 1, max: 7,
		names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}
)

// maxDayGap is the longest gap between two matching days Parse accepts.
// Secrets Manager requires Year to be * "because Secrets Manager does not
// support rotation schedules that are more than a year apart"; 53 weeks
// admits yearly weekday schedules such as the first Monday of January
// (364 or 371 days apart) and refuses rarer ones such as 29 FEB or FRI#5 in
// February.
const maxDayGap = 53 * 7

// cycleDays is 28 Gregorian years without a skipped leap day (true from 1901
// to 2099): after it, dates fall on the same weekdays again, so every
// day-of-month, month and weekday combination a cron expression can test
// occurs within it.
const cycleDays = 28*365 + 7

// parseCron parses cron(Minutes Hours Day-of-month Month Day-of-week Year)
// in AWS's dialect. Field names and letters are case-insensitive. When
// extended, Minutes may hold any minute field (Rotor's extension).
func parseCron(expr string, extended bool) (*cron, *RuleError) {
	f := strings.Fields(expr[len("cron(") : len(expr)-1])
	if len(f) != 6 {
		return nil, exprError(expr, "a cron expression has six fields: cron(Minutes Hours Day-of-month Month Day-of-week Year)")
	}
	for i := range f {
		f[i] = strings.ToUpper(f[i])
	}
	fail := func(msg string) (*cron, *RuleError) { return nil, exprError(expr, "%s", msg) }

	var minutes uint64 = 1
	if extended {
		var msg string
		if minutes, msg = minutesField.parse(f[0]); msg != "" {
			return fail(msg)
		}
	} else if !allDigits(f[0]) || strings.Trim(f[0], "0") != "" {
		return fail("the Minutes field must be 0 because rotation windows start on the hour")
	}
	hours, msg := hoursField.parse(f[1])
	if msg != "" {
		return fail(msg)
	}
	months, msg := monthField.parse(f[3])
	if msg != "" {
		return fail(msg)
	}
	if f[5] != "*" {
		return fail("the Year field must be * because Secrets Manager doesn't support rotation schedules more than a year apart")
	}
	c := &cron{months: uint16(months)}
	switch dom, dow := f[2], f[4]; {
	case dom == "?" && dow == "?":
		return fail("only one of the Day-of-month and Day-of-week fields can be ?")
	case dom != "?" && dow != "?":
		return fail("you can't specify both Day-of-month and Day-of-week: use ? in one of them")
	case dow == "?":
		msg = c.parseDayOfMonth(dom)
	default:
		msg = c.parseDayOfWeek(dow)
	}
	if msg != "" {
		return fail(msg)
	}
	for h := range 24 {
		for m := range 60 {
			if hours&(1<<h) != 0 && minutes&(1<<m) != 0 {
				c.times = append(c.times, h*60+m)
			}
		}
	}
	if msg := c.measure(); msg != "" {
		return fail(msg)
	}
	return c, nil
}

func (c *cron) parseDayOfMonth(s string) string {
	switch {
	case s == "L":
		c.lastDay = true
		return ""
	case len(s) == 4 && s[3] == 'L' && slices.Contains(dowField.names, s[:3]):
		// The user guide lists "SUNL", the last Sunday of the month, under
		// Day-of-month; it means the same as SUNL in Day-of-week.
		c.rule, c.weekday = byLastWeekday, 1+slices.Index(dowField.names, s[:3])
		return ""
	case strings.Contains(s, "W"):
		return "the W (nearest weekday) wildcard isn't supported in Secrets Manager rotation schedules"
	case strings.Contains(s, "L"):
		return "L must be the whole Day-of-month field (offsets such as L-2 aren't supported)"
	}
	days, msg := domField.parse(s)
	c.days = uint32(days)
	return msg
}

func (c *cron) parseDayOfWeek(s string) string {
	if s == "L" {
		// The last day of the week: Saturday.
		c.rule, c.weekdays = byWeekday, 1<<7
		return ""
	}
	if day, n, ok := strings.Cut(s, "#"); ok {
		if strings.ContainsAny(s, ",-*/L") {
			return "# must be the whole Day-of-week field, as in TUE#3"
		}
		w, msg := dowField.value(day)
		if msg != "" {
			return msg
		}
		if len(n) != 1 || n[0] < '1' || n[0] > '5' {
			return "the number after # in the Day-of-week field must be between 1 and 5"
		}
		c.rule, c.weekday, c.nth = byNthWeekday, w, int(n[0]-'0')
		return ""
	}
	if day, ok := strings.CutSuffix(s, "L"); ok {
		if strings.ContainsAny(day, ",-*/") {
			return "L must be the whole Day-of-week field, as in L (Saturday), FRIL or 6L"
		}
		w, msg := dowField.value(day)
		if msg != "" {
			return msg
		}
		c.rule, c.weekday = byLastWeekday, w
		return ""
	}
	days, msg := dowField.parse(s)
	c.rule, c.weekdays = byWeekday, uint8(days)
	return msg
}

// parse parses a list of values, ranges and increments into a bit set.
func (f field) parse(s string) (uint64, string) {
	var bits uint64
	for item := range strings.SplitSeq(s, ",") {
		b, msg := f.item(item)
		if msg != "" {
			return 0, msg
		}
		bits |= b
	}
	return bits, ""
}

// item parses *, V, V-V, and any of those followed by /increment. A bare
// /increment starts at the field's first value, as in AWS's example
// cron(0 /8 * * ? *) "every eight hours starting at midnight".
func (f field) item(item string) (uint64, string) {
	if item == "" {
		return 0, fmt.Sprintf("the %s field has an empty list element", f.name)
	}
	base, incr, stepped := strings.Cut(item, "/")
	step := 1
	if stepped {
		n, err := strconv.Atoi(incr)
		if !allDigits(incr) || err != nil || n < 1 || n > f.max {
			return 0, fmt.Sprintf("the increment after / in the %s field must be between 1 and %d", f.name, f.max)
		}
		step = n
	}
	lo, hi := f.min, f.max
	if base != "*" && base != "" { // an empty item was refused above, so "" has a "/"
		from, to, ranged := strings.Cut(base, "-")
		var msg string
		if lo, msg = f.value(from); msg != "" {
			return 0, msg
		}
		switch {
		case ranged:
			if hi, msg = f.value(to); msg != "" {
				return 0, msg
			}
			if hi < lo {
				return 0, fmt.Sprintf("the range %s in the %s field runs backwards", base, f.name)
			}
		case !stepped:
			hi = lo
		}
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << v
	}
	return bits, ""
}

// value parses one number or name.
func (f field) value(tok string) (int, string) {
	if allDigits(tok) {
		if n, err := strconv.Atoi(tok); err == nil && f.min <= n && n <= f.max {
			return n, ""
		}
	} else if i := slices.Index(f.names, tok); i >= 0 {
		return f.min + i, ""
	}
	switch {
	case strings.Contains(tok, "?"):
		return 0, "? can only be the whole Day-of-month or Day-of-week field"
	case strings.Contains(tok, "#"):
		return 0, "# is only allowed in the Day-of-week field, as in TUE#3"
	case strings.HasSuffix(tok, "L") && f.name == dowField.name:
		return 0, "L must be the whole Day-of-week field, as in L (Saturday), FRIL or 6L"
	case strings.Contains(tok, "L") && f.names == nil:
		return 0, fmt.Sprintf("L isn't allowed in the %s field", f.name)
	case f.names != nil:
		return 0, fmt.Sprintf("'%s' isn't a valid %s value: use %d-%d or %s-%s", tok, f.name, f.min, f.max, f.names[0], f.names[len(f.names)-1])
	}
	return 0, fmt.Sprintf("'%s' isn't a valid %s value: use %d-%d", tok, f.name, f.min, f.max)
}

// measure walks one calendar cycle to find the shortest and longest gaps
// between firings, refusing expressions that never fire or fire less than
// about once a year.
func (c *cron) measure() string {
	d := civil{y: 2001, m: 1, d: 1, wd: 2, dim: 31} // a Monday
	first, prev := -1, -1
	minDays, maxDays := 0, 0
	// Walking maxDayGap days past the cycle also measures the gap that
	// wraps around from the cycle's last firing to the next cycle's first.
	for i := range cycleDays + maxDayGap + 1 {
		if c.matchDay(d) {
			if prev < 0 {
				first = i
			} else {
				g := i - prev
				if minDays == 0 || g < minDays {
					minDays = g
				}
				maxDays = max(maxDays, g)
			}
			prev = i
		}
		d.next()
	}
	switch {
	case first < 0:
		return "the expression never matches a date"
	case first > maxDayGap || maxDays > maxDayGap:
		return "the expression can match dates more than a year (53 weeks) apart, and Secrets Manager doesn't support rotation schedules more than a year apart"
	}
	last := len(c.times) - 1
	gap := minDays*24*60 - (c.times[last] - c.times[0])
	for i := range last {
		gap = min(gap, c.times[i+1]-c.times[i])
	}
	c.gap = time.Duration(gap) * time.Minute
	return ""
}

func (c *cron) matchDay(d civil) bool {
	if c.months&(1<<d.m) == 0 {
		return false
	}
	switch c.rule {
	case byMonthDay:
		if c.lastDay {
			return d.d == d.dim
		}
		return c.days&(1<<d.d) != 0
	case byWeekday:
		return c.weekdays&(1<<d.wd) != 0
	case byNthWeekday:
		return d.wd == c.weekday && (d.d+6)/7 == c.nth
	default:
		return d.wd == c.weekday && d.d+7 > d.dim
	}
}

// civil is a UTC calendar day: weekday 1 = Sunday … 7 = Saturday, as cron
// numbers them, and the number of days in its month.
type civil struct{ y, m, d, wd, dim int }

func civilOf(t time.Time) civil {
	t = t.UTC()
	y, m, d := t.Date()
	return civil{y: y, m: int(m), d: d, wd: int(t.Weekday()) + 1, dim: daysIn(y, int(m))}
}

func (c *civil) next() {
	c.wd = c.wd%7 + 1
	if c.d++; c.d <= c.dim {
		return
	}
	c.d = 1
	if c.m++; c.m > 12 {
		c.m = 1
		c.y++
	}
	c.dim = daysIn(c.y, c.m)
}

// at returns the instant minute minutes after the day's midnight.
func (c civil) at(minute int) time.Time {
	return time.Date(c.y, time.Month(c.m), c.d, 0, minute, 0, 0, time.UTC)
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
