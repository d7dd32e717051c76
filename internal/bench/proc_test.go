package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
	}{
		{"plain", "11300 (rotor) S 11255 11255 31772 0 -1 4194304 97 0 0 0 250 37 0 0 20 0 9 0 249510 3133440 365 18446744073709551615",
			2870 * time.Millisecond},
		// A command name may hold spaces and parentheses.
		{"odd name", "42 (a) b (c)) R 1 42 42 0 -1 4194304 0 0 0 0 1 2 3 4 20 0 1 0 0 0 0", 30 * time.Millisecond},
		{"zero", "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if err != nil || got != tc.want {
				t.Errorf("parseStatCPU = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "1 init S", "1 (x) S 1 2 3", "1 (x) S 0 1 1 0 -1 0 0 0 0 0 x y 0 0"} {
		if got, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := `Name:	rotor
Umask:	0022
State:	S (sleeping)
VmPeak:	 1264116 kB
VmSize:	 1264116 kB
VmHWM:	   52364 kB
VmRSS:	   38544 kB
RssAnon:	   20136 kB
Threads:	9
`
	rss, peak, err := parseStatusRSS([]byte(status))
	if err != nil || rss != 38544<<10 || peak != 52364<<10 {
		t.Errorf("parseStatusRSS = %d, %d, %v; want %d, %d", rss, peak, err, 38544<<10, 52364<<10)
	}
	for _, bad := range []string{"Name:\tkthreadd\nState:\tS\n", "VmHWM:\t1 kB\nVmRSS:\tlots kB\n", "VmHWM:\t1 kB\nVmRSS:\t12 MB\n"} {
		if _, _, err := parseStatusRSS([]byte(bad)); err == nil {
			t.Errorf("parseStatusRSS(%q) succeeded", bad)
		}
	}
}

func TestCPUInfo(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14 96-Core Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n"
	if got, want := cpuModel([]byte(cpuinfo)), "AMD EPYC 9R14 96-Core Processor"; got != want {
		t.Errorf("cpuModel = %q, want %q", got, want)
	}
	if got := cpuModel([]byte("processor\t: 0\nCPU implementer\t: 0x41\n")); got != "" {
		t.Errorf("cpuModel without a model name = %q", got)
	}
	if got := loadAvg([]byte("1.52 0.98 0.47 3/412 12345\n")); len(got) != 3 || got[0] != 1.52 || got[2] != 0.47 {
		t.Errorf("loadAvg = %v, want [1.52 0.98 0.47]", got)
	}
	if got := loadAvg([]byte("garbage")); got != nil {
		t.Errorf("loadAvg(garbage) = %v, want nil", got)
	}
	if got, want := memTotal([]byte("MemTotal:       24683652 kB\nMemFree:         1 kB\n")), int64(24683652)<<10; got != want {
		t.Errorf("memTotal = %d, want %d", got, want)
	}
}

func TestDirSize(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 100), 0o600)
	os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o700)
	os.WriteFile(filepath.Join(dir, "sub", "deeper", "b"), make([]byte, 23), 0o600)
	os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "link"))
	if got, err := DirSize(dir); err != nil || got != 123 {
		t.Errorf("DirSize = %d, %v; want 123", got, err)
	}
}

func TestChildEnviron(t *testing.T) {
	got := childEnviron([]string{"PATH=/bin", "ROTOR_RATE_LIMIT=5", "HOME=/root", "ROTOR_DATA_DIR=/x", "AWS_REGION=eu-west-1"})
	want := []string{"PATH=/bin", "HOME=/root", "AWS_REGION=eu-west-1"}
	if len(got) != len(want) {
		t.Fatalf("childEnviron = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("childEnviron = %q, want %q", got, want)
		}
	}
}
