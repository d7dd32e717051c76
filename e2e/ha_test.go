package e2e

// High availability end to end: three `rotor server` nodes share one
// PostgreSQL store (--store), each with its own data dir and the same
// master.key. One node at a time holds the rotation lease and runs the
// background work; when it is SIGKILLed mid-rotation another takes the
// lease and finishes the rotation from its stored step, with no second run
// and no failed login. Writes on one node are read on the others at once;
// IAM changes, label-change streams and named keys follow across nodes; the
// cluster recovers from a PostgreSQL restart; a client that knows every
// node loses no request when one dies; each node's audit chain verifies.
//
// The tests run one at a time (not in parallel): they start three servers
// each, and their logged figures (takeover time after kill -9, failovers)
// go into the documentation. They assert no durations beyond generous
// deadlines.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/dbtest"
)

// TestHAKillLeaderMidRotation: the leader kills itself (SIGKILL, by its
// test hook) right after storing setSecret's completion of an
// alternating-users rotation requested on another node. Another node takes
// the lease once its TTL runs out and finishes that rotation from its
// stored step: one run, exactly one new version, AWSCURRENT logs in. An
// application reading AWSCURRENT from the surviving nodes and logging in
// with it every 50ms never fails meanwhile.
func TestHAKillLeaderMidRotation(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	c := newCluster(haStore(t, pg), rotationFlags(100)...)
	defer c.dumpLogs(t)
	n1 := c.add(t, "n1", "ROTOR_TEST_CRASH_AFTER_STEP=setSecret")
	n1.mayDie.Store(true)
	waitLeader(t, n1)
	n2, n3 := c.add(t, "n2"), c.add(t, "n3")
	if l := waitLeader(t, n1, n2, n3); l != n1 {
		t.Fatalf("node %s leads, want n1 (the first started)", l.id)
	}

	sm2, sm3 := client(t, n2.server), client(t, n3.server)
	seen := newSeenPasswords()
	id, initial := d.app(t, sm2, "app", seen)
	v0, _ := mustCreds(t, sm2, id, "AWSCURRENT")
	logStatements(t, pg)
	r := startCredsReader(t, d, id, seen, n2, n3)
	must(t, r.waitLogin(t.Context(), v0))

	started := time.Now()
	version := rotate(t, sm2, id, d.alt)
	waitKilled(t, n1.server)
	died := time.Now()
	logEntry(t, n1.server, "of the crash hook after setSecret", func(e map[string]any) bool {
		return e["msg"] == "test hook: killing the process after a rotation step" && e["step"] == "setSecret"
	})
	leader := waitLeader(t, n2, n3)
	toLeader := time.Since(died)
	st := waitRotation(t, n3.server, id, version)
	toDone := time.Since(died)
	must(t, r.waitLogin(t.Context(), version))
	logins, failures := r.stop()

	t.Logf("kill -9 of the leader after setSecret (lease TTL %s): node %s leads %v after the death, the rotation succeeded %v after it (%v after RotateSecret); "+
		"reader: %d logins with AWSCURRENT from n2/n3, %d failed",
		haLeaseTTL, leader.id, toLeader.Round(time.Millisecond), toDone.Round(time.Millisecond), time.Since(started).Round(time.Millisecond),
		logins, len(failures))

	if len(failures) > 0 {
		t.Errorf("%d of %d reads and logins with AWSCURRENT failed during the takeover, want 0; first ones:\n%s",
			len(failures), logins, strings.Join(failures[:min(10, len(failures))], "\n"))
	}
	if len(st.History) != 1 || st.History[0].VersionId != version || st.History[0].Outcome != "succeeded" {
		t.Errorf("rotation history = %s; want one succeeded run of %s", st.raw, version)
	} else {
		t.Logf("the run: %d attempts, started %v, ended %v", st.History[0].Attempts, fmtDate(st.History[0].StartedDate), fmtDate(st.History[0].EndedDate))
	}
	starts := 0
	for _, n := range c.nodes {
		for _, e := range n.logs.entries() {
			if e["msg"] != "rotation event" || e["secret_arn"] != id || e["event"] != "RotationStarted" {
				continue
			}
			if e["version_id"] != version {
				t.Errorf("node %s started a rotation nobody asked for (version %v) besides %s", n.id, e["version_id"], version)
			}
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("the nodes logged %d RotationStarted events, want 1: the new leader must resume the run, not start one", starts)
	}
	logEntry(t, leader.server, "RotationSucceeded of "+version+" on the new leader", rotationEvent("RotationSucceeded", id, version))
	if old, cur := leaseToken(t, n1), leaseToken(t, leader); cur <= old {
		t.Errorf("the new leader's fencing token is %v, want more than the dead leader's %v", cur, old)
	}
	// setSecret ran once, on n1: the new leader resumed at testSecret.
	pgLog, err := os.ReadFile(pg.LogPath())
	must(t, err)
	if n := len(clonePassword.FindAll(pgLog, -1)); n != 1 {
		t.Errorf("PostgreSQL's statement log has %d password changes of %s_clone, want 1 (setSecret ran again?)", n, initial.Username)
	}

	// As after any finished rotation (and on AWS), AWSPENDING stays on the
	// AWSCURRENT version; on any other it would be a rotation left over.
	stages := versionStages(t, sm3, id)
	if len(stages) != 2 || !sameSet(stages[version], []string{"AWSCURRENT", "AWSPENDING"}) || !sameSet(stages[v0], []string{"AWSPREVIOUS"}) {
		t.Errorf("versions after the takeover = %v; want exactly %s AWSCURRENT (and AWSPENDING) and %s AWSPREVIOUS", stages, version, v0)
	}
	cur, creds := mustCreds(t, sm2, id, "AWSCURRENT")
	if cur != version || creds.Username != initial.Username+"_clone" {
		t.Errorf("AWSCURRENT is version %s of user %s, want %s of %s_clone", cur, creds.Username, version, initial.Username)
	}
	d.wantLogin(t, "AWSCURRENT after the takeover", creds)
	_, prev := mustCreds(t, sm3, id, "AWSPREVIOUS")
	d.wantLogin(t, "AWSPREVIOUS (the other user) after the takeover", prev)
	wantNoPasswordsInLogs(t, sm2, seen, []string{id}, n1.server, n2.server, n3.server)
	wantNoPasswordsInFile(t, seen, "PostgreSQL's statement log", pg.LogPath(), "PASSWORD 'SCRAM-SHA-256$")
}

// clonePassword matches the statement of setSecret that sets the password
// of the clone user app_clone.
var clonePassword = regexp.MustCompile(`ALTER ROLE "?app_clone"? PASSWORD`)

// leaseToken is the fencing token with which n first led.
func leaseToken(t testing.TB, n *haNode) float64 {
	t.Helper()
	e := logEntry(t, n.server, "of node "+n.id+" leading", func(e map[string]any) bool {
		return e["msg"] == "leading: running rotations and background jobs" && e["node"] == n.id
	})
	tok, _ := e["token"].(float64)
	return tok
}

// TestHAReadYourWritesAcrossNodes: what one node commits, the others serve
// as soon as it answered: secret values (with the reader's cache warm),
// label changes on push streams, users, keys and policies; a named key
// disabled on one node stops decrypting on the others within moments.
func TestHAReadYourWritesAcrossNodes(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	c := startCluster(t, haStore(t, pg), 3)
	defer c.dumpLogs(t)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	sms := []*secretsmanager.Client{client(t, n1.server), client(t, n2.server), client(t, n3.server)}
	ctx := t.Context()

	// Round i writes on node i%3 and reads on node (i+1)%3, which read the
	// secret just before the write, so its cache holds the old value. The
	// rounds use several secrets: a secret may have at most 100 versions
	// without labels younger than a day.
	t.Run("values", func(t *testing.T) {
		const rounds, secrets = 200, 4
		names := make([]string, secrets)
		for i := range names {
			names[i] = uniqueName(t)
			createString(t, sms[i%3], names[i], "v-start")
		}
		var stale []string
		var rtt []time.Duration
		for i := range rounds {
			w, rd, name := i%3, (i+1)%3, names[i%secrets]
			getString(t, sms[rd], name)
			want := fmt.Sprintf("v-%d", i)
			put := putString(t, sms[w], name, want)
			start := time.Now()
			out, err := sms[rd].GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
			rtt = append(rtt, time.Since(start))
			if err != nil {
				t.Fatalf("round %d: GetSecretValue on %s after PutSecretValue on %s: %v", i, c.nodes[rd].id, c.nodes[w].id, err)
			}
			if got := aws.ToString(out.SecretString); got != want || aws.ToString(out.VersionId) != aws.ToString(put.VersionId) {
				stale = append(stale, fmt.Sprintf("round %d: %s answered %q (version %s) right after %s stored %q (version %s)",
					i, c.nodes[rd].id, got, aws.ToString(out.VersionId), c.nodes[w].id, want, aws.ToString(put.VersionId)))
			}
		}
		med, maxD := durationStats(rtt)
		t.Logf("%d rounds of a write on one node and a read on another: %d stale reads; the read: median %v, max %v",
			rounds, len(stale), med.Round(time.Microsecond), maxD.Round(time.Microsecond))
		if len(stale) > 0 {
			t.Errorf("%d of %d reads on another node did not see the write just made:\n%s", len(stale), rounds, strings.Join(stale[:min(10, len(stale))], "\n"))
		}
	})

	// A stream opened on n3 carries the label changes made on n1.
	t.Run("label stream", func(t *testing.T) {
		name := uniqueName(t)
		created := createString(t, sms[0], name, "first")
		stream := subscribe(t, n3.server, *rootKey(), map[string]any{"SecretIds": []string{name}})
		start := time.Now()
		put := putString(t, sms[0], name, "second")
		stream.until(t, func(e labelStreamEvent) bool {
			return e.VersionStage == "AWSCURRENT" && e.VersionId == aws.ToString(put.VersionId) && e.RemovedFromVersionId == aws.ToString(created.VersionId)
		})
		afterPut := time.Since(start)
		start = time.Now()
		_, err := sms[0].UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
			MoveToVersionId: created.VersionId, RemoveFromVersionId: put.VersionId,
		})
		must(t, err)
		stream.until(t, func(e labelStreamEvent) bool {
			return e.VersionStage == "AWSCURRENT" && e.VersionId == aws.ToString(created.VersionId) && e.RemovedFromVersionId == aws.ToString(put.VersionId)
		})
		t.Logf("from the call on n1 to the event on n3's stream: PutSecretValue %v, UpdateSecretVersionStage %v",
			afterPut.Round(time.Microsecond), time.Since(start).Round(time.Microsecond))
	})

	// Users, keys and policies changed on one node apply to the very next
	// request on another.
	t.Run("IAM", func(t *testing.T) {
		name, other := uniqueName(t), uniqueName(t)
		createString(t, sms[0], name, "for the user")
		createString(t, sms[0], other, "not for the user")
		user := uniqueUser("ha")
		pol := newPolicy(t, n1.server, uniqueUser("ha-read"), policyDoc(
			`{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+secretARNPrefix+name+`-??????"}`))
		key := newUser(t, n1.server, user, pol)
		// get is the user's GetSecretValue of id on n.
		get := func(n *haNode, id string) func() error {
			return func() error {
				_, err := keyClient(n.server, key).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
				return err
			}
		}
		setStatus := func(n *haNode, status string) {
			t.Helper()
			rotorOK(t, n.server, rootKey(), "rotor.UpdateAccessKey", map[string]string{"UserName": user, "AccessKeyId": key.AccessKeyID, "Status": status}, nil)
		}

		// want checks the outcome of step's request, do: code ("":
		// success). When it is wrong, it says how much later the change
		// applied.
		want := func(step string, do func() error, code string) {
			t.Helper()
			start := time.Now()
			err := do()
			got := apiCode(err)
			if got == code {
				return
			}
			lag := "not within " + haCacheWait.String()
			for time.Since(start) < haCacheWait {
				if apiCode(do()) == code {
					lag = time.Since(start).Round(time.Microsecond).String() + " later"
					break
				}
			}
			t.Errorf("%s: error code %q, want %q (error: %v); the change applied %s", step, got, code, err, lag)
		}
		want("on n2, the user created on n1", get(n2, name), "")
		want("on n2, a secret n1's policy does not allow", get(n2, other), "AccessDeniedException")
		want("on n1", get(n1, name), "")
		setStatus(n3, "Inactive")
		want("on n1 after the key was deactivated on n3", get(n1, name), "UnrecognizedClientException")
		want("on n2 after the key was deactivated on n3", get(n2, name), "UnrecognizedClientException")
		setStatus(n2, "Active")
		want("on n3 after the key was activated on n2", get(n3, name), "")
		want("on n1 after the key was activated on n2", get(n1, name), "")
		rotorOK(t, n3.server, rootKey(), "rotor.DetachUserPolicy", map[string]string{"UserName": user, "PolicyArn": pol}, nil)
		want("on n1 after the policy was detached on n3", get(n1, name), "AccessDeniedException")
		attachPolicy(t, n2.server, user, pol)
		want("on n1 after the policy was attached on n2", get(n1, name), "")
		rotorOK(t, n1.server, rootKey(), "rotor.DeleteAccessKey", map[string]string{"UserName": user, "AccessKeyId": key.AccessKeyID}, nil)
		want("on n2 after the key was deleted on n1", get(n2, name), "UnrecognizedClientException")
		want("on n3 after the key was deleted on n1", get(n3, name), "UnrecognizedClientException")
	})

	// A named key disabled on n2 stops decrypting on n3 (asynchronous
	// reload: polled), and enabled on n3 decrypts on n1 again.
	t.Run("named KMS key", func(t *testing.T) {
		const alias = "alias/ha-team"
		createKMSKey(t, n1.server, alias)
		name := uniqueName(t)
		_, err := sms[0].CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), KmsKeyId: aws.String(alias), SecretString: aws.String("under " + alias)})
		must(t, err)
		if got := getString(t, sms[2], name); got != "under "+alias {
			t.Fatalf("n3 reads %q", got)
		}
		runKey(t, n2.server, "disable", alias)
		disabled := untilCode(t, sms[2], name, "DecryptionFailure")
		runKey(t, n3.server, "enable", alias)
		enabled := untilCode(t, sms[0], name, "")
		t.Logf("named key disabled on n2: n3 refuses to decrypt %v later; enabled on n3: n1 decrypts %v later",
			disabled.Round(time.Microsecond), enabled.Round(time.Microsecond))
	})
}

// untilCode polls GetSecretValue of id on c, for at most haCacheWait, until
// it fails with code ("" : until it succeeds), and returns how long that
// took.
func untilCode(t testing.TB, c *secretsmanager.Client, id, code string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if apiCode(err) == code {
			return time.Since(start)
		}
		if time.Since(start) > haCacheWait {
			t.Fatalf("GetSecretValue %s: still %q after %v, want %q (last error %v)", id, apiCode(err), haCacheWait, code, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHAPostgresRestart: the store's PostgreSQL stops under three nodes,
// long enough for the leader to lose its lease, and starts again. Within a
// generous bound every node serves reads and writes again, exactly one node
// leads, and a value written on one node is read on another.
func TestHAPostgresRestart(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	c := startCluster(t, haStore(t, pg), 3)
	defer c.dumpLogs(t)
	sms := make([]*secretsmanager.Client, len(c.nodes))
	for i, n := range c.nodes {
		sms[i] = client(t, n.server)
	}
	name := uniqueName(t)
	createString(t, sms[0], name, "before")
	wantRoundTrips(t, c, sms, name, "before the restart")
	before := waitLeader(t, c.nodes...)

	// PostgreSQL stays down until the leader, unable to renew its lease,
	// stops leading: the nodes must then elect a leader again.
	stopped := time.Now()
	pg.Stop(t)
	_, outageErr := sms[1].GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	waitNoLeader(t, c.nodes...)
	steppedDown := time.Since(stopped)
	pg.Start(t)
	back := time.Now()
	t.Logf("PostgreSQL was down for %v; node %s led before and stopped leading %v into the outage; a read during the outage: %v",
		back.Sub(stopped).Round(time.Millisecond), before.id, steppedDown.Round(time.Millisecond), outageErr)

	var wg sync.WaitGroup
	serving := make([]time.Duration, len(c.nodes))
	for i, n := range c.nodes {
		wg.Go(func() {
			serving[i] = eventually(t, "node "+n.id+" serves GetSecretValue and PutSecretValue", func(ctx context.Context) error {
				if _, err := sms[i].GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}); err != nil {
					return err
				}
				_, err := sms[i].PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("after-" + n.id)})
				return err
			})
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	leader := waitLeader(t, c.nodes...)
	toLeader := time.Since(back)
	wantRoundTrips(t, c, sms, name, "after the restart")
	t.Logf("after PostgreSQL started again: nodes serve reads and writes after %v; node %s leads %v after",
		durationsString(c, serving), leader.id, toLeader.Round(time.Millisecond))
}

// wantRoundTrips writes id on each node and reads it at once on the next.
func wantRoundTrips(t testing.TB, c *haCluster, sms []*secretsmanager.Client, id, when string) {
	t.Helper()
	for i := range sms {
		j := (i + 1) % len(sms)
		want := fmt.Sprintf("%s from %s", when, c.nodes[i].id)
		putString(t, sms[i], id, want)
		if got := getString(t, sms[j], id); got != want {
			t.Errorf("%s: %s reads %q right after %s wrote %q", when, c.nodes[j].id, got, c.nodes[i].id, want)
		}
	}
}

func durationsString(c *haCluster, ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%s %v", c.nodes[i].id, d.Round(time.Millisecond))
	}
	return strings.Join(parts, ", ")
}

// TestHAClientAcrossNodes: a client given every node's address (requests
// round robin; on a connection error the same request goes to the next
// node) keeps 8 workers writing and reading for haWorkTime while a node is
// SIGKILLed, and not one request fails; each read returns the value its
// worker just wrote, whichever node served either. Once with a follower
// killed, once with the leader.
func TestHAClientAcrossNodes(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	for _, victim := range []string{"follower", "leader"} {
		t.Run("kill the "+victim, func(t *testing.T) {
			c := startCluster(t, haStore(t, pg), 3)
			defer c.dumpLogs(t)
			leader := waitLeader(t, c.nodes...)
			target := leader
			if victim == "follower" {
				target = c.nodes[slices.IndexFunc(c.nodes, func(n *haNode) bool { return n != leader })]
			}
			clientAcrossNodes(t, c, target, "the "+victim, func(died time.Time) {
				// While the workers go on.
				if l := waitLeader(t, c.running()...); target == leader {
					t.Logf("node %s leads %v after the leader's death", l.id, time.Since(died).Round(time.Millisecond))
				} else if l != leader {
					t.Errorf("node %s leads after a follower's death, want %s still", l.id, leader.id)
				}
			})
		})
	}
}

const (
	haWorkers       = 8
	haPutsPerSecret = 50
)

// clientAcrossNodes runs the workers against every node of c, kills victim
// (role names it in the log) haKillAfter into it and then calls afterKill
// with the time of its death, while the workers go on.
func clientAcrossNodes(t *testing.T, c *haCluster, victim *haNode, role string, afterKill func(died time.Time)) {
	t.Helper()
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	tr := newSpreadTransport(addrs)
	t.Cleanup(tr.base.CloseIdleConnections)
	sm := spreadClient(c.nodes[0], tr)

	var (
		wg                sync.WaitGroup
		ops               atomic.Int64
		mu                sync.Mutex
		failed, staleRead []string
	)
	fail := func(list *[]string, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		*list = append(*list, fmt.Sprintf(format, args...))
	}
	start := time.Now()
	deadline := start.Add(haWorkTime)
	for w := range haWorkers {
		wg.Go(func() {
			var name string
			for i := 0; time.Now().Before(deadline); i++ {
				if i%haPutsPerSecret == 0 {
					// A fresh secret now and then: at most 100 versions
					// without labels a day.
					name = uniqueName(t)
					_, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("initial")})
					ops.Add(1)
					if err != nil {
						fail(&failed, "+%v worker %d CreateSecret: %v", time.Since(start).Round(time.Millisecond), w, err)
						return
					}
				}
				want := fmt.Sprintf("w%d-%d", w, i)
				put, err := sm.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(want)})
				ops.Add(1)
				if err != nil {
					fail(&failed, "+%v worker %d PutSecretValue: %v", time.Since(start).Round(time.Millisecond), w, err)
					continue
				}
				out, err := sm.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
				ops.Add(1)
				switch {
				case err != nil:
					fail(&failed, "+%v worker %d GetSecretValue: %v", time.Since(start).Round(time.Millisecond), w, err)
				case aws.ToString(out.SecretString) != want || aws.ToString(out.VersionId) != aws.ToString(put.VersionId):
					fail(&staleRead, "+%v worker %d read %q right after writing %q", time.Since(start).Round(time.Millisecond), w, aws.ToString(out.SecretString), want)
				}
			}
		})
	}
	select {
	case <-time.After(haKillAfter):
	case <-t.Context().Done():
	}
	died := victim.kill(t)
	opsAtKill := ops.Load()
	afterKill(died)
	wg.Wait()
	elapsed := time.Since(start)

	t.Logf("killed %s (%s) at +%v: %d operations by %d workers in %v (%d before the kill), %d HTTP requests, %d failovers %v; %d failed, %d stale reads",
		victim.id, role, died.Sub(start).Round(time.Millisecond),
		ops.Load(), haWorkers, elapsed.Round(time.Millisecond), opsAtKill, tr.requests.Load(), tr.failovers.Load(),
		tr.failoverReasons(), len(failed), len(staleRead))
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed, want 0; first ones:\n%s", len(failed), ops.Load(), strings.Join(failed[:min(10, len(failed))], "\n"))
	}
	if len(staleRead) > 0 {
		t.Errorf("%d reads did not return the value just written; first ones:\n%s", len(staleRead), strings.Join(staleRead[:min(10, len(staleRead))], "\n"))
	}
	if tr.failovers.Load() == 0 {
		t.Errorf("no failover: the client never met the dead node")
	}
	if ops.Load() == opsAtKill {
		t.Errorf("no request after the kill")
	}
}

// spreadClient is an SDK client whose requests tr spreads over the nodes;
// it signs for first's endpoint, the Host header every node is sent.
func spreadClient(first *haNode, tr *spreadTransport) *secretsmanager.Client {
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(testAccessKeyID, testSecretAccessKey, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:  &http.Client{Transport: tr, Timeout: httpTimeout},
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(first.endpoint()) })
}

// TestHAWrongMasterKey: a node whose data dir has a master key of its own
// (not a copy of the cluster's) is refused at start, and says why.
func TestHAWrongMasterKey(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	c := startCluster(t, haStore(t, pg), 1)
	defer c.dumpLogs(t)
	createString(t, client(t, c.nodes[0].server), uniqueName(t), "sealed with n1's key")

	dir := t.TempDir()
	out, code := runRotor(t, []string{"ROTOR_ROOT_ACCESS_KEY_ID=" + testAccessKeyID, "ROTOR_ROOT_SECRET_ACCESS_KEY=" + testSecretAccessKey},
		append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir}, c.nodeArgs("n2")...)...)
	if code == 0 || strings.Contains(out, "rotor server listening") {
		t.Fatalf("a node with another master key started (exit status %d); output:\n%s", code, out)
	}
	if !strings.Contains(out, "same master key") {
		t.Errorf("the refusal does not say that every node needs the same master key:\n%s", out)
	}
	t.Logf("refusal (exit status %d): %s", code, strings.TrimSpace(out))
	if strings.Contains(out, pg.SuperPassword) {
		t.Errorf("the refusal shows the store's password:\n%s", out)
	}
}

// TestHAAuditVerify: each node writes its own audit chain in its data dir,
// anchored in the shared store under its node id. `rotor audit verify
// --store … --data-dir …` checks every node's chain: intact with every data
// dir given; a node the store knows of without its data dir, or one
// altered line in a node's log, fails it, naming the node or the line.
func TestHAAuditVerify(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	c := startCluster(t, haStore(t, pg), 3)
	defer c.dumpLogs(t)
	for _, n := range c.nodes {
		sm := client(t, n.server)
		name := uniqueName(t)
		createString(t, sm, name, "audited")
		for j := range 5 {
			putString(t, sm, name, fmt.Sprintf("audited %d", j))
			getString(t, sm, name)
		}
		_, err := sm.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(uniqueName(t))})
		wantCode(t, err, "ResourceNotFoundException")
	}
	for _, n := range c.nodes {
		if code, err := n.stop(); err != nil || code != 0 {
			t.Fatalf("node %s: exit status %d, %v; log:\n%s", n.id, code, err, n.logs)
		}
	}
	dirs := func(nodes ...*haNode) []string {
		args := []string{"--store", c.dsn}
		for _, n := range nodes {
			args = append(args, "--data-dir", n.dataDir)
		}
		return args
	}
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	out, code := verifyOutput(t, dirs(n1, n2, n3)...)
	if code != 0 || strings.Count(out, "intact") < 3 {
		t.Errorf("rotor audit verify of the three nodes: exit status %d, want 0 and \"intact\" for each\n%s", code, out)
	}
	for _, n := range c.nodes {
		if !strings.Contains(out, n.id) && !strings.Contains(out, n.dataDir) {
			t.Errorf("the report does not name node %s:\n%s", n.id, out)
		}
	}

	out, code = verifyOutput(t, dirs(n1, n2)...)
	if code != 1 || !strings.Contains(out, "n3") {
		t.Errorf("rotor audit verify without n3's data dir: exit status %d, want 1 and n3 named\n%s", code, out)
	}

	// One byte of a request record in the middle of n2's log changes
	// (inside its request id: the line stays JSON).
	path := auditLogPath(n2.dataDir)
	orig, err := os.ReadFile(path)
	must(t, err)
	lines := strings.SplitAfter(string(orig), "\n")
	m := len(lines) / 2 // 1-based line m is lines[m-1]
	for m < len(lines) && !strings.Contains(lines[m-1], `"request_id":"`) {
		m++
	}
	i := strings.Index(lines[m-1], `"request_id":"`)
	if i < 0 {
		t.Fatalf("no request record in the second half of %s", path)
	}
	i += len(`"request_id":"`)
	b := []byte(lines[m-1])
	b[i] ^= 1
	lines[m-1] = string(b)
	must(t, os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600))
	out, code = verifyOutput(t, dirs(n1, n2, n3)...)
	if code != 1 || !regexp.MustCompile(`\bline `+strconv.Itoa(m)+`\b`).MatchString(out) {
		t.Errorf("rotor audit verify with line %d of n2's log altered: exit status %d, want 1 and the line named\n%s", m, code, out)
	}
	if !strings.Contains(out, "n2") && !strings.Contains(out, n2.dataDir) {
		t.Errorf("the report of the altered log does not name n2:\n%s", out)
	}
	t.Logf("report with line %d of n2's log altered (exit status %d):\n%s", m, code, out)
}
