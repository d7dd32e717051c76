package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rotor-secrets/rotor/internal/bench"
)

// writeAPIText prints a get or put result.
func writeAPIText(w io.Writer, r *bench.APIResult) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "rotor bench %s: %s secrets of %d bytes, concurrency %d, %s\n", r.Mode, group(int64(o.Secrets)), o.Size, o.Concurrency, runLength(o.Duration, o.Requests))
	if r.Server.Child {
		fmt.Fprintf(&b, "server: child process on %s (%s; ready in %s)\n", r.Server.Endpoint, strings.Join(o.ServerFlags, " "), seconds(r.Server.Startup))
	} else {
		fmt.Fprintf(&b, "server: %s (server CPU unknown)\n", r.Server.Endpoint)
	}
	writeMachine(&b, r.Machine, r.Date)
	b.WriteString("\n")
	rows := [][]string{passHeader(), passRow("rotor", r.Result)}
	if r.Ceiling != nil {
		rows = append(rows, passRow("ceiling", *r.Ceiling))
	}
	writeTable(&b, rows)
	b.WriteString("\n")
	if r.PercentOfCeiling != nil {
		fmt.Fprintf(&b, "rotor: %.1f %% of the ceiling (the same client against a trivial in-process server)\n", *r.PercentOfCeiling)
	}
	if r.ServerRSS != nil {
		fmt.Fprintf(&b, "server RSS after the run: %s\n", bytesText(*r.ServerRSS))
	}
	fmt.Fprintf(&b, "setup: %s secrets created with CreateSecret at %s/s\n", group(int64(o.Secrets)), group(int64(r.Setup.PerSecond)))
	writeErrorCodes(&b, "rotor", r.Result.Stats)
	if r.Ceiling != nil {
		writeErrorCodes(&b, "ceiling", r.Ceiling.Stats)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCeilingText prints a ceiling result.
func writeCeilingText(w io.Writer, r *bench.CeilingResult) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "rotor bench ceiling: %s shape, %d-byte value, concurrency %d, %s\n", o.Op, o.Size, o.Concurrency, runLength(o.Duration, o.Requests))
	b.WriteString("server: trivial handler in this process (no verification, fixed body)\n")
	writeMachine(&b, r.Machine, r.Date)
	b.WriteString("\n")
	writeTable(&b, [][]string{passHeader(), passRow("ceiling", r.Result)})
	writeErrorCodes(&b, "ceiling", r.Result.Stats)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRotateText prints a rotate result.
func writeRotateText(w io.Writer, r *bench.RotateResult) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "rotor bench rotate: %d rotations per function", o.Rotations)
	if o.Secrets > 0 {
		fmt.Fprintf(&b, "; %s secrets per engine at concurrency %d", group(int64(o.Secrets)), o.Concurrency)
	}
	b.WriteString("\n")
	for _, d := range r.Databases {
		fmt.Fprintf(&b, "%s: %s (throwaway, on this machine)\n", d.Engine, d.Version)
	}
	writeMachine(&b, r.Machine, r.Date)
	b.WriteString("\n")
	rows := [][]string{{"function", "rotations", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"}}
	for _, f := range r.Functions {
		l := f.Latency
		rows = append(rows, []string{f.Function, strconv.Itoa(l.Samples), msText(l.P50), msText(l.P90), msText(l.P99), msText(l.Max), msText(l.Mean)})
	}
	writeTable(&b, rows)
	if len(r.Batches) > 0 {
		b.WriteString("\n")
		rows = [][]string{{"engine", "function", "secrets", "concurrency", "wall s", "rotations/s", "p50 ms", "p99 ms"}}
		for _, x := range r.Batches {
			rows = append(rows, []string{x.Engine, x.Function, group(int64(x.Secrets)), strconv.Itoa(x.Concurrency),
				fmt.Sprintf("%.2f", x.Wall), fmt.Sprintf("%.1f", x.PerSecond), msText(x.Latency.P50), msText(x.Latency.P99)})
		}
		writeTableLeft(&b, 2, rows)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeScaleText prints a scale result, the baseline next to N.
func writeScaleText(w io.Writer, r *bench.ScaleResult) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "rotor bench scale: %s secrets of %d bytes", group(int64(o.Secrets)), o.Size)
	if r.Baseline != nil {
		fmt.Fprintf(&b, ", compared with %s", group(int64(o.Baseline)))
	}
	fmt.Fprintf(&b, "\nGetSecretValue: random secrets, concurrency %d, %s after a %s warm-up; ListSecrets: %d pages of %d in a row\n",
		o.Concurrency, o.Duration, o.Warmup, o.Pages, o.PageSize)
	fmt.Fprintf(&b, "server: child process (%s)\n", strings.Join(o.ServerFlags, " "))
	writeMachine(&b, r.Machine, r.Date)
	b.WriteString("\n")
	points := []*bench.ScalePoint{&r.Result}
	if r.Baseline != nil {
		points = []*bench.ScalePoint{r.Baseline, &r.Result}
	}
	rows := [][]string{{"secrets"}}
	for _, p := range points {
		rows[0] = append(rows[0], group(int64(p.Secrets)))
	}
	add := func(label string, f func(p *bench.ScalePoint) string) {
		row := []string{label}
		for _, p := range points {
			row = append(row, f(p))
		}
		rows = append(rows, row)
	}
	add("load (secrets/s)", func(p *bench.ScalePoint) string { return group(int64(p.Load.PerSecond)) })
	add("load time", func(p *bench.ScalePoint) string { return seconds(p.Load.Seconds) })
	add("first read of each", func(p *bench.ScalePoint) string { return seconds(p.Load.FirstReads) })
	add("store on disk", func(p *bench.ScalePoint) string { return bytesText(p.StoreBytes) })
	add("store bytes per secret", func(p *bench.ScalePoint) string { return group(p.StoreBytes / int64(p.Secrets)) })
	add("data dir at the end", func(p *bench.ScalePoint) string { return bytesText(p.DataDirBytes) })
	add("startup (exec to /readyz 200)", func(p *bench.ScalePoint) string { return seconds(p.Startup) })
	add("RSS after warm-up", func(p *bench.ScalePoint) string { return bytesText(p.RSSWarm) })
	add("RSS peak", func(p *bench.ScalePoint) string { return bytesText(p.RSSPeak) })
	add("GetSecretValue req/s", func(p *bench.ScalePoint) string { return group(int64(p.Get.PerSecond)) })
	add("GetSecretValue p50 ms", func(p *bench.ScalePoint) string { return msText(p.Get.Latency.P50) })
	add("GetSecretValue p99 ms", func(p *bench.ScalePoint) string { return msText(p.Get.Latency.P99) })
	add("GetSecretValue errors", func(p *bench.ScalePoint) string { return group(p.Get.Errors) })
	add("server CPU s / 1k GetSecretValue", func(p *bench.ScalePoint) string { return cpuText(p.Get.ServerCPUPer1000, false) })
	add("ListSecrets page p50 ms", func(p *bench.ScalePoint) string { return msText(p.List.Latency.P50) })
	add("ListSecrets page p99 ms", func(p *bench.ScalePoint) string { return msText(p.List.Latency.P99) })
	add("ListSecrets errors", func(p *bench.ScalePoint) string { return group(p.List.Errors) })
	writeTable(&b, rows)
	for _, p := range points {
		writeErrorCodes(&b, fmt.Sprintf("GetSecretValue at %s", group(int64(p.Secrets))), p.Get.Stats)
		writeErrorCodes(&b, fmt.Sprintf("ListSecrets at %s", group(int64(p.Secrets))), p.List)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func passHeader() []string {
	return []string{"", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "server CPU s/1k req", "client CPU s/1k req"}
}

func passRow(name string, p bench.Pass) []string {
	l := p.Latency
	return []string{name, group(int64(p.PerSecond)), msText(l.P50), msText(l.P90), msText(l.P99), msText(l.Max),
		group(p.Errors), cpuText(p.ServerCPUPer1000, name == "ceiling"), fmt.Sprintf("%.3f", p.ClientCPUPer1000)}
}

func writeMachine(b *strings.Builder, m bench.Machine, date time.Time) {
	fmt.Fprintf(b, "machine: %d CPU", m.CPUs)
	if m.CPUModel != "" {
		fmt.Fprintf(b, " %s", m.CPUModel)
	}
	if m.MemTotal > 0 {
		fmt.Fprintf(b, ", %s RAM", bytesText(m.MemTotal))
	}
	fmt.Fprintf(b, ", %s/%s", m.OS, m.Arch)
	if m.Kernel != "" {
		fmt.Fprintf(b, " %s", m.Kernel)
	}
	fmt.Fprintf(b, ", %s; %s", m.GoVersion, date.Format(time.RFC3339))
	if len(m.LoadAvg) == 3 {
		fmt.Fprintf(b, ", load average %.2f %.2f %.2f", m.LoadAvg[0], m.LoadAvg[1], m.LoadAvg[2])
	}
	b.WriteString("\n")
}

func writeErrorCodes(b *strings.Builder, what string, s bench.Stats) {
	if len(s.ErrorCodes) == 0 {
		return
	}
	fmt.Fprintf(b, "%s errors:", what)
	for _, code := range slices.Sorted(maps.Keys(s.ErrorCodes)) {
		fmt.Fprintf(b, " %s %s", code, group(s.ErrorCodes[code]))
	}
	b.WriteString("\n")
}

// writeTable aligns rows: the first column to the left, the others (numbers)
// to the right, two spaces apart.
func writeTable(b *strings.Builder, rows [][]string) { writeTableLeft(b, 1, rows) }

// writeTableLeft is writeTable with the first left columns aligned to the
// left.
func writeTableLeft(b *strings.Builder, left int, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i > 0 {
				line.WriteString("  ")
			}
			if i < left {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

func runLength(d bench.Duration, requests int64) string {
	if requests > 0 {
		return group(requests) + " requests"
	}
	return d.String()
}

// group formats n with thousands separators: 12,345.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// msText formats milliseconds with three significant digits or more.
func msText(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.2f", ms)
}

func seconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

// cpuText formats CPU seconds; none means there is no server process to
// measure (the ceiling), rather than one whose CPU is unknown.
func cpuText(v *float64, none bool) string {
	switch {
	case none:
		return "-"
	case v == nil:
		return "unknown"
	}
	return fmt.Sprintf("%.3f", *v)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progress draws a one-line progress bar on a terminal; elsewhere it does
// nothing, so that logs and pipes get only the result.
type progress struct {
	w     io.Writer // nil: not a terminal
	mu    sync.Mutex
	drawn bool
}

func newProgress(stderr io.Writer) *progress {
	if !isTerminal(stderr) {
		return &progress{}
	}
	return &progress{w: stderr}
}

// update is a bench Progress callback.
func (p *progress) update(pr bench.Progress) {
	if p.w == nil {
		return
	}
	const width = 30
	var line string
	if f := pr.Fraction(); f >= 0 {
		n := int(f * width)
		rate := ""
		if pr.Elapsed > 0 {
			rate = fmt.Sprintf("  %s/s", group(int64(float64(pr.Done)/pr.Elapsed.Seconds())))
		}
		errs := ""
		if pr.Errors > 0 {
			errs = fmt.Sprintf("  %s errors", group(pr.Errors))
		}
		line = fmt.Sprintf("%-28s [%s%s] %3.0f%%  %s done%s%s", pr.Phase, strings.Repeat("#", n), strings.Repeat(".", width-n), f*100, group(pr.Done), rate, errs)
	} else {
		line = pr.Phase + " …"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

// clear removes the bar, so that the result starts on a clean line.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
