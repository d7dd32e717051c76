package rotation

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rotor-secrets/rotor/internal/rotation/schedule"
)

// SchedulePlanner is the Planner of AWS rotation rules (RotationRules JSON
// with AutomaticallyAfterDays, ScheduleExpression, Duration): the next
// window of the schedule, a start time spread inside it, and
// NextRotationDate at the window's end.
type SchedulePlanner struct {
	Options schedule.Options // MinInterval: AWS's 4 hours unless lowered

	mu  sync.Mutex
	rnd *rand.Rand
}

// Plan implements Planner. Errors are *schedule.RuleError values.
func (p *SchedulePlanner) Plan(rulesJSON string, lastRotated, now time.Time) (time.Time, time.Time, error) {
	var r schedule.Rules
	if err := json.Unmarshal([]byte(rulesJSON), &r); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("rotation rules: %v", err)
	}
	s, err := schedule.Parse(r, p.Options)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	w := s.Next(lastRotated, now)
	p.mu.Lock()
	if p.rnd == nil {
		p.rnd = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5851f42d4c957f2d))
	}
	wake := w.From(now).PickStart(p.rnd.Int64N)
	p.mu.Unlock()
	return wake, s.NextRotationDate(lastRotated, now), nil
}
