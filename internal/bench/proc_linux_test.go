//go:build linux

package bench

import (
	"os"
	"testing"
	"time"
)

// /proc is Linux's: this test runs only there.

func TestProcSelf(t *testing.T) {
	// Burn some CPU so that there is something to see.
	for t0 := time.Now(); time.Since(t0) < 30*time.Millisecond; {
	}
	cpu, err := ProcCPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("ProcCPU(self) = %v, %v", cpu, err)
	}
	rss, peak, err := ProcRSS(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Errorf("ProcRSS(self) = %d, %d, %v", rss, peak, err)
	}
}
