package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/server"
)

// maxValueSize is Secrets Manager's limit on a secret value.
const maxValueSize = 65536

// Target is the server a get or put run measures.
type Target struct {
	// Endpoint is a running server's URL, reached with Region and
	// Credentials; its CPU time is unknown. Empty: the run starts a child
	// server from Executable on a temporary data directory and removes both
	// when it ends.
	Endpoint    string
	Region      string
	Credentials aws.CredentialsProvider
	Executable  string
	// ServerFlags are added to the child server's command line (e.g.
	// --audit-sync-interval 10ms).
	ServerFlags []string
}

// APIOptions configure get and put.
type APIOptions struct {
	Secrets     int            `json:"secrets"`      // K secrets, created before the run
	Size        int            `json:"size_bytes"`   // B bytes of SecretString each
	Concurrency int            `json:"concurrency"`  // C workers
	Duration    Duration       `json:"duration"`     // D, unless Requests is set
	Requests    int64          `json:"requests"`     // stop after this many instead of D; 0: D
	NoCeiling   bool           `json:"no_ceiling"`   // skip the ceiling pass
	Endpoint    string         `json:"endpoint"`     // Target.Endpoint, for the record
	ServerFlags []string       `json:"server_flags"` // the child server's flags besides --listen and --data-dir
	Warmup      Duration       `json:"warmup"`       // unmeasured load before the run
	Target      Target         `json:"-"`            //
	Progress    func(Progress) `json:"-"`            // nil: no reports
}

// APIResult is the outcome of get or put.
type APIResult struct {
	Mode    string     `json:"mode"` // "get" or "put"
	Date    time.Time  `json:"date"`
	Machine Machine    `json:"machine"`
	Options APIOptions `json:"options"`
	Server  ServerInfo `json:"server"`
	// Setup is the creation of the secrets, through CreateSecret.
	Setup  Stats `json:"setup"`
	Result Pass  `json:"result"`
	// ServerRSS is the child server's resident set after the run; nil for
	// an endpoint.
	ServerRSS *int64 `json:"server_rss_bytes"`
	// Ceiling is the same load against the trivial in-process server, run
	// right after; nil with NoCeiling.
	Ceiling *Pass `json:"ceiling"`
	// PercentOfCeiling is Result's req/s as a percentage of Ceiling's.
	PercentOfCeiling *float64 `json:"percent_of_ceiling"`
	Warnings         []string `json:"warnings,omitempty"`
}

// ServerInfo says which server a run measured.
type ServerInfo struct {
	Endpoint string   `json:"endpoint"`
	Child    bool     `json:"child"` // started by the benchmark
	Args     []string `json:"args,omitempty"`
	Startup  float64  `json:"startup_s,omitempty"` // exec to the first 200 of /readyz
}

// Pass is one measured run with the CPU it cost.
type Pass struct {
	Stats
	// ServerCPU is the server's user+system CPU time during the run; nil
	// when unknown (a server the benchmark did not start).
	ServerCPU        *float64 `json:"server_cpu_s"`
	ServerCPUPer1000 *float64 `json:"server_cpu_s_per_1000_req"`
	// ClientCPU is the benchmark process's CPU time during the run: the
	// client, and for a ceiling pass the trivial server too.
	ClientCPU        float64 `json:"client_cpu_s"`
	ClientCPUPer1000 float64 `json:"client_cpu_s_per_1000_req"`
}

// Get measures GetSecretValue of random secrets among K.
func Get(ctx context.Context, o APIOptions) (*APIResult, error) { return runAPI(ctx, "get", o) }

// Put measures PutSecretValue (durable writes), cycling through the K
// secrets. Rotor, like AWS, refuses a version beyond 100 unlabelled ones
// younger than a day (LimitExceededException), so K secrets take about
// K·100 puts: size K for the run.
func Put(ctx context.Context, o APIOptions) (*APIResult, error) { return runAPI(ctx, "put", o) }

func (o *APIOptions) check() error {
	var errs []error
	if o.Secrets < 1 {
		errs = append(errs, errors.New("secrets: want at least 1"))
	}
	if o.Size < 1 || o.Size > maxValueSize {
		errs = append(errs, fmt.Errorf("size: want 1 to %d bytes", maxValueSize))
	}
	if o.Concurrency < 1 {
		errs = append(errs, errors.New("concurrency: want at least 1"))
	}
	if o.Duration <= 0 && o.Requests <= 0 {
		errs = append(errs, errors.New("duration: want a positive duration (or a request count)"))
	}
	return optionsError(errs)
}

// load is the Load of a measured run.
func (o *APIOptions) load(phase string) Load {
	l := Load{Concurrency: o.Concurrency, Phase: phase, Progress: o.Progress}
	if o.Requests > 0 {
		l.Count = o.Requests
	} else {
		l.Duration = time.Duration(o.Duration)
	}
	return l
}

func runAPI(ctx context.Context, mode string, o APIOptions) (_ *APIResult, err error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Target.Endpoint == "" && o.Target.Executable == "" {
		return nil, &OptionsError{Err: errNoExecutable}
	}
	o.Endpoint = o.Target.Endpoint
	if o.Warmup == 0 && o.Requests == 0 {
		o.Warmup = Duration(min(time.Second, time.Duration(o.Duration)/10))
	}
	res := &APIResult{Mode: mode, Date: time.Now().UTC(), Machine: ThisMachine(), Options: o}
	endpoint, region, creds := o.Target.Endpoint, o.Target.Region, o.Target.Credentials
	var child *Child
	if endpoint == "" {
		res.Options.ServerFlags = append(slices.Clip(serverFlags), o.Target.ServerFlags...)
		report(o.Progress, "start server")
		var dir string
		if dir, err = os.MkdirTemp("", "rotor-bench-"); err != nil {
			return nil, err
		}
		defer removeAll(dir, &err)
		child, err = StartChild(ctx, o.Target.Executable, dir, o.Target.ServerFlags...)
		if err != nil {
			return nil, err
		}
		defer stopChild(child, &err)
		endpoint, region, creds = child.Endpoint, server.DefaultRegion, child.Credentials()
		res.Server = ServerInfo{Endpoint: endpoint, Child: true, Args: child.Args, Startup: child.Startup.Seconds()}
	} else {
		res.Server = ServerInfo{Endpoint: endpoint}
	}

	client := NewClient(endpoint, region, creds, o.Concurrency)
	names := make([]string, o.Secrets)
	prefix := "bench/" + mode + "/" + runID()
	for i := range names {
		names[i] = secretName(prefix, i)
	}
	if child == nil {
		// Leave the server as it was, even after a failure or Ctrl-C.
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if derr := deleteSecrets(cctx, client, names, o.Concurrency); derr != nil {
				res.Warnings = append(res.Warnings, derr.Error())
			}
		}()
	}
	if res.Setup, err = createSecrets(ctx, client, names, o.Size, o.Concurrency, o.Progress); err != nil {
		return nil, err
	}

	op := getOp(client, names, o.Concurrency)
	if mode == "put" {
		op = putOp(client, names, o.Size, o.Concurrency)
	}
	if o.Warmup > 0 {
		if _, err := Run(ctx, Load{Concurrency: o.Concurrency, Duration: time.Duration(o.Warmup), Phase: "warm-up", Progress: o.Progress}, op); err != nil {
			return nil, err
		}
	}
	res.Result, err = measure(ctx, o.load(mode), op, child)
	if err != nil {
		return nil, err
	}
	if child != nil {
		if rss, _, err := child.RSS(); err == nil {
			res.ServerRSS = &rss
		}
	}
	if n := res.Result.ErrorCodes["LimitExceededException"]; n > 0 && mode == "put" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d puts were refused with LimitExceededException: a secret takes about 100 new versions a day; use more --secrets", n))
	}
	if !o.NoCeiling {
		c, err := ceilingPass(ctx, mode, o.Size, names, o.load("ceiling"))
		if err != nil {
			return nil, err
		}
		res.Ceiling = &c
		if c.PerSecond > 0 {
			pct := 100 * res.Result.PerSecond / c.PerSecond
			res.PercentOfCeiling = &pct
			if pct > 100 {
				res.Warnings = append(res.Warnings, "the ceiling pass was slower than the server's: something else was using the machine; run again")
			}
		}
	}
	return res, nil
}

// getOp reads a random one of names.
func getOp(c *secretsmanager.Client, names []string, workers int) Op {
	rngs := make([]*rand.Rand, workers)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
	}
	return func(ctx context.Context, worker int, _ int64) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId: aws.String(names[rngs[worker].IntN(len(names))]),
		})
		return err
	}
}

// putOp stores a new size-byte value in names[seq mod K]: round robin, so
// that the secrets' version allowances run out together and as late as
// possible.
func putOp(c *secretsmanager.Client, names []string, size, workers int) Op {
	vals := make([][]byte, workers)
	for i := range vals {
		vals[i] = []byte(value(rand.New(rand.NewPCG(uint64(i), 11)), size))
	}
	return func(ctx context.Context, worker int, seq int64) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		v := vals[worker]
		// A value differing from the last one (the sequence number in
		// front), the same size.
		s := strconv.FormatInt(seq, 36)
		copy(v, s[max(0, len(s)-len(v)):])
		_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(names[seq%int64(len(names))]), SecretString: aws.String(string(v)),
		})
		return err
	}
}

// measure runs a load and records the CPU the client and, when known, the
// server spent on it.
func measure(ctx context.Context, l Load, op Op, child *Child) (Pass, error) {
	var srv0 time.Duration
	if child != nil {
		var err error
		if srv0, err = child.CPU(); err != nil {
			return Pass{}, fmt.Errorf("server CPU: %w", err)
		}
	}
	self0, err := ProcCPU(os.Getpid())
	if err != nil {
		return Pass{}, fmt.Errorf("own CPU: %w", err)
	}
	st, err := Run(ctx, l, op)
	if err != nil {
		return Pass{}, err
	}
	self1, err := ProcCPU(os.Getpid())
	if err != nil {
		return Pass{}, fmt.Errorf("own CPU: %w", err)
	}
	p := Pass{Stats: st, ClientCPU: cpuSeconds(self1 - self0)}
	if st.Requests > 0 {
		p.ClientCPUPer1000 = p.ClientCPU / float64(st.Requests) * 1000
	}
	if child != nil {
		srv1, err := child.CPU()
		if err != nil {
			return Pass{}, fmt.Errorf("server CPU: %w", err)
		}
		cpu := cpuSeconds(srv1 - srv0)
		p.ServerCPU = &cpu
		if st.Requests > 0 {
			per := cpu / float64(st.Requests) * 1000
			p.ServerCPUPer1000 = &per
		}
	}
	return p, nil
}

// cpuSeconds is d in seconds, to the clock tick that measured it.
func cpuSeconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*clockTicks) / clockTicks
}

// CeilingOptions configure ceiling.
type CeilingOptions struct {
	Op          string         `json:"op"`         // "get" (default) or "put": the response shape
	Size        int            `json:"size_bytes"` // B: the SecretString in the response (get) or request (put)
	Concurrency int            `json:"concurrency"`
	Duration    Duration       `json:"duration"`
	Requests    int64          `json:"requests"`
	Progress    func(Progress) `json:"-"`
}

// CeilingResult is the outcome of ceiling.
type CeilingResult struct {
	Mode    string         `json:"mode"` // "ceiling"
	Date    time.Time      `json:"date"`
	Machine Machine        `json:"machine"`
	Options CeilingOptions `json:"options"`
	Result  Pass           `json:"result"`
}

// RunCeiling measures the loopback limit: the get or put client against
// the trivial in-process server.
func RunCeiling(ctx context.Context, o CeilingOptions) (*CeilingResult, error) {
	if o.Op == "" {
		o.Op = "get"
	}
	a := APIOptions{Secrets: 1, Size: o.Size, Concurrency: o.Concurrency, Duration: o.Duration, Requests: o.Requests,
		Progress: o.Progress}
	if err := a.check(); err != nil {
		return nil, err
	}
	if o.Op != "get" && o.Op != "put" {
		return nil, &OptionsError{Err: fmt.Errorf("op: %q is not get or put", o.Op)}
	}
	var err error
	res := &CeilingResult{Mode: "ceiling", Date: time.Now().UTC(), Machine: ThisMachine(), Options: o}
	names := []string{secretName("bench/ceiling/"+runID(), 0)}
	res.Result, err = ceilingPass(ctx, o.Op, o.Size, names, a.load("ceiling"))
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ceilingPass runs l with op (get or put) against a new Ceiling.
func ceilingPass(ctx context.Context, op string, size int, names []string, l Load) (Pass, error) {
	c, err := StartCeiling(size)
	if err != nil {
		return Pass{}, err
	}
	defer c.Close()
	client := NewClient(c.Endpoint, server.DefaultRegion, staticCreds("AKRTBENCHCEILING0000", "ceiling-secret-access-key-000000000000"), l.Concurrency)
	o := getOp(client, names, l.Concurrency)
	if op == "put" {
		o = putOp(client, names, size, l.Concurrency)
	}
	warm := l
	warm.Count, warm.Duration, warm.Phase = 0, min(time.Second, max(l.Duration/10, 100*time.Millisecond)), "warm-up"
	if _, err := Run(ctx, warm, o); err != nil {
		return Pass{}, err
	}
	return measure(ctx, l, o, nil)
}

// report tells progress that a phase without a measure of its own began.
func report(progress func(Progress), phase string) {
	if progress != nil {
		progress(Progress{Phase: phase})
	}
}

// stopChild stops c and makes its failure the function's error when there
// was none.
func stopChild(c *Child, err *error) {
	if serr := c.Stop(); serr != nil && *err == nil {
		*err = serr
	}
}

// removeAll removes a temporary directory, reporting a failure as the
// function's error when there was none.
func removeAll(dir string, err *error) {
	if rerr := os.RemoveAll(dir); rerr != nil && *err == nil {
		*err = rerr
	}
}
