package schedule_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/rotation/schedule"
)

// FuzzParse checks that Parse never panics, that it refuses only with a
// *RuleError, and that whatever it accepts yields sane windows.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"rate(1 day)", "rate(10 days)", "rate(4 hours)", "rate(7 hours)", "rate(999 days)", "rate(5 minutes)",
		"cron(0 /8 * * ? *)", "cron(0 8/8 * * ? *)", "cron(0 2/10 * * ? *)", "cron(0 10 * * ? *)",
		"cron(0 18 ? * SAT *)", "cron(0 8 1 * ? *)", "cron(0 1 ? 1/3 SUN#1 *)", "cron(0 17 L * ? *)",
		"cron(0 8 ? * MON-FRI *)", "cron(0 16 1,15 * ? *)", "cron(0 0 ? * SUN#1 *)", "cron(0 4/12 * * ? *)",
		"cron(0 0 ? * 6L *)", "cron(0 0 SUNL * ? *)", "cron(0 0 ? * L *)", "cron(0 0 ? JAN MON#1 *)",
		"cron(*/5 * * * ? *)", "cron(30 9 * * ? *)", "cron(0 0 30 2 ? *)", "cron(0 0 29 2 ? *)",
		"cron(0 8 15W * ? *)", "cron(0 22-2 * * ? *)", "cron(0 0/0 * * ? *)", "rate(0 days)", "",
	}
	for i, e := range seeds {
		f.Add(e, []string{"", "1h", "3h", "12h", "24h", "0h"}[i%6], int64(0), int64(i%4), int64(1718000000+i*7919), int64(1717000000+i*104729))
	}
	f.Add("", "", int64(30), int64(0), int64(1718000000), int64(0))
	f.Add("", "4h", int64(1000), int64(1), int64(4102444800), int64(-1))

	// Times are kept within 1900–2200; minInterval picks AWS's minimum or
	// a lowered one that unlocks the minute extension.
	const lo, hi = -2208988800, 7258118400
	minIntervals := []time.Duration{0, time.Minute, 30 * time.Minute, time.Hour}
	f.Fuzz(func(t *testing.T, expr, dur string, afterDays, minSel, nowUnix, lastUnix int64) {
		rules := schedule.Rules{ScheduleExpression: expr, Duration: dur}
		if afterDays != 0 {
			rules.AutomaticallyAfterDays = &afterDays
		}
		opts := schedule.Options{MinInterval: minIntervals[uint64(minSel)%uint64(len(minIntervals))]}
		s, err := schedule.Parse(rules, opts)
		if err != nil {
			var re *schedule.RuleError
			if !errors.As(err, &re) || re.Field == "" || re.Message == "" {
				t.Fatalf("Parse(%+v) error %T %q is not a complete *RuleError", rules, err, err)
			}
			return
		}
		minInterval := opts.MinInterval
		if minInterval == 0 {
			minInterval = schedule.DefaultMinInterval
		}
		if s.Interval() < minInterval {
			t.Fatalf("%v: Interval() = %v, below the minimum %v", s, s.Interval(), minInterval)
		}
		if _, err := schedule.Parse(s.Rules(), opts); err != nil {
			t.Fatalf("%v: Rules() does not parse again: %v", s, err)
		}

		now := time.Unix(lo+mod(nowUnix, hi-lo), 0)
		var last time.Time
		if lastUnix >= 0 {
			last = time.Unix(lo+mod(lastUnix, hi-lo), 0)
		}
		w := s.Next(last, now)
		switch {
		case !w.End.After(w.Start):
			t.Fatalf("%v: Next(%v, %v) = %v: empty window", s, last, now, w)
		case w.End.Sub(w.Start) > 24*time.Hour:
			t.Fatalf("%v: Next(%v, %v) = %v: longer than a day", s, last, now, w)
		case !w.End.After(now):
			t.Fatalf("%v: Next(%v, %v) = %v: ends before now", s, last, now, w)
		case last.IsZero() && w.Start.Before(now):
			t.Fatalf("%v: Next(never, %v) = %v: starts before now", s, now, w)
		case !last.IsZero() && !w.Start.After(last):
			t.Fatalf("%v: Next(%v, %v) = %v: starts before the last rotation", s, last, now, w)
		case w.Start.Unix()%60 != 0:
			t.Fatalf("%v: Next(%v, %v) = %v: not on a whole minute", s, last, now, w)
		case opts.MinInterval == 0 && w.Start.Unix()%3600 != 0:
			t.Fatalf("%v: Next(%v, %v) = %v: not on the hour", s, last, now, w)
		}
		if got := s.NextRotationDate(last, now); !got.Equal(w.End.Add(-time.Second)) {
			t.Fatalf("%v: NextRotationDate = %v, want %v", s, got, w.End.Add(-time.Second))
		}
		r := rand.New(rand.NewPCG(uint64(nowUnix), uint64(lastUnix)))
		if at := w.PickStart(r.Int64N); at.Before(w.Start) || !at.Before(w.End) {
			t.Fatalf("%v: PickStart = %v, outside %v", s, at, w)
		}
	})
}

func mod(a, n int64) int64 {
	if a %= n; a < 0 {
		a += n
	}
	return a
}
