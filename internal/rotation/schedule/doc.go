// Package schedule implements AWS Secrets Manager rotation schedules: it
// validates RotationRules (AutomaticallyAfterDays, ScheduleExpression,
// Duration) as AWS does and computes rotation windows from them.
//
// A caller needs three things:
//
//	s, err := schedule.Parse(rules, schedule.Options{})   // at RotateSecret
//	next := s.NextRotationDate(lastRotated, now)          // for DescribeSecret
//	at := s.Next(lastRotated, now).From(now).PickStart(r.Int64N) // for the scheduler
//
// Nothing here reads the clock or a global random source unless told to:
// time comes in as arguments and randomness as a function, so tests never
// sleep and are reproducible. A *Schedule is immutable and safe for
// concurrent use.
//
// # Errors
//
// Parse returns a *RuleError naming the offending member. Constraint errors
// (a service-model limit: length, pattern, numeric range) become AWS's
// ValidationException, the others InvalidParameterException; the Message is
// ready for the wire. Parse never panics, whatever its input.
//
// # Rules, as AWS documents them
//
// Sources: the API reference for RotationRulesType; the user guide pages
// "Rotation schedules" and "Schedule expressions in Secrets Manager
// rotation" (docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_schedule.html,
// and awsdocs/aws-secrets-manager-docs doc_source/rotate-secrets_schedule.md
// as of 2022-11); EventBridge's "Rate expressions reference" where Secrets
// Manager is silent.
//
//   - Exactly one of AutomaticallyAfterDays (1–1000) and ScheduleExpression
//     (1–256 characters of [0-9A-Za-z()#?*-/, ]).
//   - rate(Value Unit), Unit hour, hours, day or days, at most 999 days
//     ("The maximum rotation period is 999 days"). As EventBridge requires,
//     a Value of 1 takes the singular and larger Values the plural:
//     rate(1 day), rate(2 days); rate(1 days) and rate(2 day) are refused.
//   - cron(Minutes Hours Day-of-month Month Day-of-week Year), UTC. Minutes
//     must be 0 and Year must be *. Hours 0–23; Day-of-month 1–31 or L;
//     Month 1–12 or JAN–DEC; Day-of-week 1–7 or SUN–SAT (1 = SUN), or L
//     (Saturday, the last day of the week), DAYL/nL (the last such weekday
//     of the month), DAY#n (the nth, n 1–5). Lists (,), ranges (-), * and
//     increments (/) are accepted in Hours, Day-of-month, Month and
//     Day-of-week; "/8" alone means "0/8" (the user guide's
//     cron(0 /8 * * ? *)). Exactly one of Day-of-month and Day-of-week must
//     be ?. Names and letters are case-insensitive. The user guide lists
//     SUNL under Day-of-month, so DAYL (a named day) is accepted there too
//     and means the same. # and L must make up the whole field (EventBridge:
//     one expression only with #).
//   - Not accepted, because Secrets Manager does not document them: W in
//     Day-of-month (EventBridge has it), L-n offsets, LW, and ranges that
//     wrap around (FRI-MON, 22-2). An expression that never matches a date
//     (cron(0 0 30 FEB ? *)) is refused, and so is one whose days can be
//     more than 53 weeks apart (29 FEB, FRI#5 in February), by the user
//     guide's reason for requiring Year to be *: Secrets Manager "does not
//     support rotation schedules that are more than a year apart". 53 weeks
//     admits the first Monday of January and the like.
//   - Schedules whose windows can open less than Options.MinInterval apart
//     (AWS: four hours) are refused, naming the minimum.
//   - Duration is [0-9]+h, 2–3 characters, 1h–24h. A schedule is "in
//     hours" when windows can open more than once a day (rate in hours or
//     minutes, cron with several firings a day) and "in days" otherwise
//     (rate in days, AutomaticallyAfterDays, cron firing once on a day).
//     Without Duration a window in hours lasts one hour and a window in
//     days lasts to the end of its UTC day. The newest user guide states the
//     overlap rule per kind, and this package applies exactly that: in
//     hours, Duration may not exceed the shortest time between two window
//     starts; in days, the start hour plus Duration may not exceed 24 hours
//     (the window may not cross into the next UTC day). A window in hours
//     may therefore cross midnight (cron(0 4/12 * * ? *) with Duration 12h).
//
// # Windows
//
// rate(N days) and AutomaticallyAfterDays N (the same thing) are date-based:
// the next window is the one of the UTC day N days after the day of the last
// rotation, opening at midnight, so a secret rotated on the 3rd at 15:00
// under rate(10 days) rotates on the 13th. Manual changes through
// PutSecretValue or UpdateSecret count as rotations (AWS), so the caller
// passes their time as lastRotated.
//
// rate(N hours) windows open every N hours on a grid anchored at midnight
// UTC of 1970-01-01 (the user guide: "the default rotation window starts at
// midnight"). For N dividing 24 this is every midnight and every N hours
// after it; for other N the interval stays exactly N hours instead of
// restarting at midnight, so rate(7 hours) never rotates 3 hours apart. The
// next window is the grid slot after the last rotation's slot. cron()
// hour increments do restart each day, as AWS documents
// ("cron(0 4/12 * * ? *) means 4:00 AM, 4:00 PM, and then the next day 4:00 AM").
//
// A rotation window that closed before now without a rotation (downtime,
// repeated failures) is overdue: for rate schedules Next then returns the
// window open now, or the next one, so the secret rotates soon; for cron()
// it returns the next window that opens, as the schedule is fixed. A secret
// never rotated (zero lastRotated) gets the first window starting at or
// after now — not one already open — which is what RotateImmediately=false
// asks for; a caller who wants the schedule to count from the creation date
// passes that as lastRotated.
//
// NextRotationDate is the window's end minus one second: AWS reports "on or
// before this date" and shows day windows as 23:59:59. PickStart spreads
// rotations uniformly over the window but keeps back its last half, at most
// one hour, for the rotation to finish and be retried inside the window.
//
// # Minute extension (Rotor only)
//
// When Options.MinInterval is below one hour — a server flag for
// demonstrations and tests — Parse also accepts rate(N minute|minutes) and a
// full Minutes field in cron() (0–59 with , - * /), so a demo can rotate
// every few minutes: cron(0/5 * * * ? *) or rate(5 minutes). Windows in
// hours then default to one hour or the time between two windows, whichever
// is shorter. With the default minimum such expressions are refused exactly
// as AWS refuses them.
package schedule
