package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/bench"
)

// benchChildEnv makes this test binary act as rotor itself, so that `rotor
// bench` can start it as its child server (it starts os.Executable()).
const benchChildEnv = "RUN_TEST_BINARY_AS_ROTOR"

func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// runBench runs one `rotor bench` command line in-process with the
// process's environment, which the child server inherits.
func runBench(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: os.Getenv}
	code := runEnv(t.Context(), e, append([]string{"bench"}, args...))
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestBenchGetEndToEnd(t *testing.T) {
	// Not ROTOR_*: the benchmark keeps those from its child.
	t.Setenv(benchChildEnv, "1")
	r := runBench(t, "get", "--duration", "1s", "--secrets", "10", "--concurrency", "4", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr is not a terminal, so it should stay empty: %q", r.stderr)
	}
	var res bench.APIResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("output is not one JSON result: %v\n%s", err, r.stdout)
	}
	if res.Mode != "get" || res.Options.Secrets != 10 || res.Options.Concurrency != 4 || res.Options.Duration != bench.Duration(time.Second) {
		t.Errorf("mode %q, options %+v; want get with the flags' values", res.Mode, res.Options)
	}
	if res.Machine.CPUs < 1 || res.Machine.GoVersion == "" || res.Date.IsZero() {
		t.Errorf("machine %+v, date %v; want them recorded", res.Machine, res.Date)
	}
	if res.Setup.Requests != 10 || res.Setup.Errors != 0 {
		t.Errorf("setup %+v, want 10 secrets created", res.Setup)
	}
	p := res.Result
	if p.Requests < 10 || p.Errors != 0 || p.PerSecond <= 0 || p.Latency.P99 <= 0 || p.Latency.Max < p.Latency.P99 {
		t.Errorf("result %+v, want successful requests with latencies", p.Stats)
	}
	if p.Elapsed < 1 || p.Elapsed > 3 {
		t.Errorf("a 1s run took %v s", p.Elapsed)
	}
	if p.ServerCPU == nil || *p.ServerCPU <= 0 || p.ServerCPUPer1000 == nil || res.ServerRSS == nil || *res.ServerRSS <= 0 {
		t.Errorf("server CPU %v, per 1000 %v, RSS %v; want the child's figures", p.ServerCPU, p.ServerCPUPer1000, res.ServerRSS)
	}
	if res.Ceiling == nil || res.Ceiling.Requests == 0 || res.Ceiling.ServerCPU != nil || res.PercentOfCeiling == nil || *res.PercentOfCeiling <= 0 {
		t.Errorf("ceiling %+v, percent %v; want a ceiling pass", res.Ceiling, res.PercentOfCeiling)
	}
	if !res.Server.Child || !strings.HasPrefix(res.Server.Endpoint, "http://127.0.0.1:") || res.Server.Startup <= 0 {
		t.Errorf("server %+v, want a child on loopback", res.Server)
	}

	// Everything is gone: the child server and its data directory.
	var dataDir string
	for i, a := range res.Server.Args {
		if a == "--data-dir" && i+1 < len(res.Server.Args) {
			dataDir = res.Server.Args[i+1]
		}
	}
	if _, err := os.Stat(dataDir); dataDir == "" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir %q still there (%v)", dataDir, err)
	}
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(res.Server.Endpoint, "http://"), time.Second)
	if err == nil {
		conn.Close()
		t.Error("the child server still listens after the run")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial the finished server: %v, want connection refused", err)
	}
}

// TestBenchScaleSmall proves the scale path end to end on a tiny store: the
// direct load, and a child server that opens the loaded data directory.
func TestBenchScaleSmall(t *testing.T) {
	t.Setenv(benchChildEnv, "1")
	r := runBench(t, "scale", "--secrets", "300", "--baseline", "0", "--duration", "300ms", "--warmup", "100ms",
		"--pages", "5", "--concurrency", "4", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var res bench.ScaleResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	p := res.Result
	if res.Baseline != nil || p.Secrets != 300 || p.Load.PerSecond <= 0 || p.StoreBytes <= 0 || p.DataDirBytes <= p.StoreBytes/2 {
		t.Errorf("result %+v, want 300 secrets loaded and sized", p)
	}
	if p.Get.Requests == 0 || p.Get.Errors != 0 || p.List.Requests != 5 || p.List.Errors != 0 {
		t.Errorf("get %+v, list %+v; want reads of the loaded secrets without errors", p.Get.Stats, p.List)
	}
	if p.Startup <= 0 || p.RSSWarm <= 0 || p.RSSPeak < p.RSSWarm || p.Get.ServerCPU == nil {
		t.Errorf("startup %v, RSS %d/%d, server CPU %v; want the child's figures", p.Startup, p.RSSWarm, p.RSSPeak, p.Get.ServerCPU)
	}
}

func TestBenchCeiling(t *testing.T) {
	r := runBench(t, "ceiling", "--duration", "300ms", "--concurrency", "2", "--size", "1024")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	var header, row string
	for i, l := range lines {
		if strings.Contains(l, "req/s") && i+1 < len(lines) {
			header, row = l, lines[i+1]
		}
	}
	if !strings.Contains(r.stdout, "rotor bench ceiling: get shape, 1024-byte value, concurrency 2, 300ms") ||
		!strings.HasPrefix(row, "ceiling ") || !strings.Contains(header, "p99 ms") {
		t.Errorf("unexpected table:\n%s", r.stdout)
	}
	// The columns line up: every cell ends where its header does.
	if len(header) != len(row) {
		t.Errorf("header and row differ in width:\n%s\n%s", header, row)
	}

	r = runBench(t, "ceiling", "--op", "put", "--requests", "200", "--concurrency", "2", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	var res bench.CeilingResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Mode != "ceiling" || res.Options.Op != "put" || res.Result.Requests != 200 || res.Result.Errors != 0 || res.Result.ServerCPU != nil {
		t.Errorf("result %+v, want 200 put requests and no server CPU", res)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"ceiling", "--concurrency", "0"},
		{"ceiling", "--op", "delete"},
		{"get", "--size", "70000"},
		{"rotate", "--engines", "oracle"},
		{"scale", "--million", "--secrets", "5"},
	} {
		r := runBench(t, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "rotor: error: ") {
			t.Errorf("rotor bench %s: exit %d, stderr %q; want a usage error", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}
