package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/server"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// The files of a server's data directory that loadStore writes before the
// server first opens it (internal/server names them).
const (
	masterKeyFile = "master.key"
	storeFile     = "rotor.db"
)

// ScaleOptions configure scale.
type ScaleOptions struct {
	Secrets     int      `json:"secrets"`     // N, default 100,000
	Baseline    int      `json:"baseline"`    // the small store compared with; 0: none
	Size        int      `json:"size_bytes"`  // B bytes of SecretString each
	Concurrency int      `json:"concurrency"` // GetSecretValue workers
	Duration    Duration `json:"duration"`    // of the GetSecretValue run
	Warmup      Duration `json:"warmup"`      // GetSecretValue load before RSS is read
	Pages       int      `json:"pages"`       // ListSecrets pages read, one after the other
	PageSize    int      `json:"page_size"`   // MaxResults of each
	ServerFlags []string `json:"server_flags"`
	// Executable is rotor's binary, started as the server.
	Executable string         `json:"-"`
	Progress   func(Progress) `json:"-"`
}

// ScaleResult is the outcome of scale.
type ScaleResult struct {
	Mode     string       `json:"mode"` // "scale"
	Date     time.Time    `json:"date"`
	Machine  Machine      `json:"machine"`
	Options  ScaleOptions `json:"options"`
	Baseline *ScalePoint  `json:"baseline"` // nil without a baseline
	Result   ScalePoint   `json:"result"`
}

// ScalePoint is what a store of Secrets secrets costs.
type ScalePoint struct {
	Secrets int `json:"secrets"`
	// Load is the filling of the store: CreateSecret through the domain
	// service, straight into the SQLite store before the server starts (see
	// loadStore).
	Load LoadFigures `json:"load"`
	// StoreBytes is the SQLite database (with its -wal and -shm) after the
	// load; DataDirBytes everything in the data directory after the
	// measurements (the audit log of the benchmark's requests included).
	StoreBytes   int64 `json:"store_bytes"`
	DataDirBytes int64 `json:"data_dir_bytes"`
	// Startup is from exec of the server to the first 200 of GET /readyz.
	Startup float64 `json:"startup_s"`
	// RSSWarm is the server's resident set after the warm-up; RSSPeak its
	// peak (VmHWM) at the end.
	RSSWarm int64 `json:"rss_after_warmup_bytes"`
	RSSPeak int64 `json:"rss_peak_bytes"`
	// Get is GetSecretValue of random secrets; List is ListSecrets pages of
	// PageSize, read one after another with NextToken from the first page
	// (again from the first when the walk reaches the end).
	Get  Pass  `json:"get_secret_value"`
	List Stats `json:"list_secrets"`
}

// LoadFigures describe how a store was filled.
type LoadFigures struct {
	Seconds   float64 `json:"seconds"`       // creating the secrets
	PerSecond float64 `json:"secrets_per_s"` // created per second
	// FirstReads is the time of the first GetSecretValue of every secret
	// (which records LastAccessedDate) that follows, in the same process.
	FirstReads float64 `json:"first_reads_s"`
	Method     string  `json:"method"`
}

// loadMethod is LoadFigures.Method.
const loadMethod = "secrets.Service.CreateSecret, then GetSecretValue of each, straight into the SQLite store before the server starts, 256 callers at once"

// loadConcurrency is how many CreateSecret calls loadStore makes at once.
const loadConcurrency = 256

// Scale measures what the number of secrets costs: for the baseline and
// then for N secrets, a fresh data directory is filled, a child server
// started on it, and its figures read.
func Scale(ctx context.Context, o ScaleOptions) (*ScaleResult, error) {
	var errs []error
	if o.Secrets < 1 || o.Baseline < 0 {
		errs = append(errs, errors.New("secrets: want at least 1 (and a baseline of 0 or more)"))
	}
	if o.Size < 1 || o.Size > maxValueSize {
		errs = append(errs, fmt.Errorf("size: want 1 to %d bytes", maxValueSize))
	}
	if o.Concurrency < 1 || o.Duration <= 0 || o.Pages < 1 || o.PageSize < 1 || o.PageSize > 100 {
		errs = append(errs, errors.New("concurrency, duration and pages: want positive values, and a page size of 1 to 100"))
	}
	if o.Executable == "" {
		errs = append(errs, errNoExecutable)
	}
	if err := optionsError(errs); err != nil {
		return nil, err
	}
	o.ServerFlags = serverFlags
	res := &ScaleResult{Mode: "scale", Date: time.Now().UTC(), Machine: ThisMachine(), Options: o}
	if o.Baseline > 0 {
		p, err := scalePoint(ctx, o, o.Baseline)
		if err != nil {
			return nil, fmt.Errorf("baseline of %d secrets: %w", o.Baseline, err)
		}
		res.Baseline = p
	}
	p, err := scalePoint(ctx, o, o.Secrets)
	if err != nil {
		return nil, fmt.Errorf("%d secrets: %w", o.Secrets, err)
	}
	res.Result = *p
	return res, nil
}

func scalePoint(ctx context.Context, o ScaleOptions, n int) (_ *ScalePoint, err error) {
	tag := fmt.Sprintf(" (%d)", n)
	dir, err := os.MkdirTemp("", "rotor-bench-scale-")
	if err != nil {
		return nil, err
	}
	defer removeAll(dir, &err)

	p := &ScalePoint{Secrets: n}
	names := make([]string, n)
	for i := range names {
		names[i] = secretName("bench/scale", i)
	}
	created, touched, err := loadStore(ctx, dir, names, o.Size, o.Progress, tag)
	if err != nil {
		return nil, fmt.Errorf("load the store: %w", err)
	}
	p.Load = LoadFigures{Seconds: created.Seconds(), PerSecond: float64(n) / created.Seconds(),
		FirstReads: touched.Seconds(), Method: loadMethod}
	if p.StoreBytes, err = storeSize(dir); err != nil {
		return nil, err
	}

	report(o.Progress, "start server"+tag)
	child, err := StartChild(ctx, o.Executable, dir)
	if err != nil {
		return nil, err
	}
	defer stopChild(child, &err)
	p.Startup = child.Startup.Seconds()

	client := NewClient(child.Endpoint, server.DefaultRegion, child.Credentials(), o.Concurrency)
	get := getOp(client, names, o.Concurrency)
	if o.Warmup > 0 {
		if _, err := Run(ctx, Load{Concurrency: o.Concurrency, Duration: time.Duration(o.Warmup), Phase: "warm-up" + tag, Progress: o.Progress}, get); err != nil {
			return nil, err
		}
	}
	if p.RSSWarm, _, err = child.RSS(); err != nil {
		return nil, err
	}
	p.Get, err = measure(ctx, Load{Concurrency: o.Concurrency, Duration: time.Duration(o.Duration), Phase: "get" + tag, Progress: o.Progress}, get, child)
	if err != nil {
		return nil, err
	}
	var token *string
	p.List, err = Run(ctx, Load{Concurrency: 1, Count: int64(o.Pages), Phase: "list" + tag, Progress: o.Progress},
		func(ctx context.Context, _ int, _ int64) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			out, err := client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(int32(o.PageSize)), NextToken: token})
			if err != nil {
				token = nil
				return err
			}
			if len(out.SecretList) == 0 {
				return errors.New("empty ListSecrets page")
			}
			token = out.NextToken
			return nil
		})
	if err != nil {
		return nil, err
	}
	if _, p.RSSPeak, err = child.RSS(); err != nil {
		return nil, err
	}
	if err := child.Stop(); err != nil {
		return nil, err
	}
	if p.DataDirBytes, err = DirSize(dir); err != nil {
		return nil, err
	}
	return p, nil
}

// storeSize is the size of the SQLite files in dir.
func storeSize(dir string) (int64, error) {
	var total int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, storeFile+suffix))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		total += fi.Size()
	}
	return total, nil
}

// loadStore fills a new data directory with secrets as a server would have
// stored them: its master key file, its SQLite store, and the domain
// service's CreateSecret (as the system, which needs no policy), called by
// loadConcurrency goroutines so that the store commits their transactions
// together (group commit). The API would add a SigV4 verification, an HTTP
// exchange and an audit record per secret: measured on a 2-CPU machine,
// about 3,500 CreateSecret/s through the API against about 8,000/s here,
// and a million audit records in the data directory. The server opens the
// directory afterwards and adds what it creates on first start (key check,
// root key, audit log).
//
// Then every secret is read once, because the day's first read of a secret
// records its LastAccessedDate, a write: without it the reads measured at N
// secrets would be mostly first reads and those at the baseline not, and
// the comparison would be of writes with reads.
func loadStore(ctx context.Context, dir string, names []string, size int, progress func(Progress), tag string) (created, touched time.Duration, err error) {
	mk, _, err := keyring.LoadOrCreateKeyFile(filepath.Join(dir, masterKeyFile))
	if err != nil {
		return 0, 0, err
	}
	kr, err := keyring.New(mk)
	if err != nil {
		return 0, 0, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, storeFile))
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	svc := secrets.New(secrets.Config{
		Region: server.DefaultRegion, AccountID: server.DefaultAccountID,
		Store: st, Keyring: kr, Logger: slog.New(slog.DiscardHandler),
	})
	vals := make([]string, 64)
	r := rand.New(rand.NewPCG(3, 5))
	for i := range vals {
		vals[i] = value(r, size)
	}
	sys := iam.System(ctx)
	t0 := time.Now()
	stats, err := Run(sys, Load{Concurrency: loadConcurrency, Count: int64(len(names)), Phase: "load" + tag, Progress: progress},
		func(ctx context.Context, _ int, seq int64) error {
			_, err := svc.CreateSecret(ctx, secrets.CreateSecretInput{
				Name: names[seq], Value: secrets.StringValue(vals[seq%int64(len(vals))]),
			})
			return err
		})
	if err != nil {
		return 0, 0, err
	}
	if stats.Errors > 0 {
		return 0, 0, fmt.Errorf("%d of %d CreateSecret failed (%s)", stats.Errors, len(names), codes(stats.ErrorCodes))
	}
	created = time.Since(t0)

	t1 := time.Now()
	stats, err = Run(sys, Load{Concurrency: loadConcurrency, Count: int64(len(names)), Phase: "first reads" + tag, Progress: progress},
		func(ctx context.Context, _ int, seq int64) error {
			_, err := svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: names[seq]})
			return err
		})
	if err != nil {
		return 0, 0, err
	}
	if stats.Errors > 0 {
		return 0, 0, fmt.Errorf("%d of %d GetSecretValue failed (%s)", stats.Errors, len(names), codes(stats.ErrorCodes))
	}
	return created, time.Since(t1), nil
}
