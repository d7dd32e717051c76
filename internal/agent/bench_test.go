package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

const benchValue = `{"engine":"postgres","host":"db.internal","port":5432,"username":"app","password":"0123456789abcdef0123456789abcdef","dbname":"app"}`

// BenchmarkAgentGet is one GET of a cached secret over loopback HTTP with a
// keep-alive connection, as an application reading through the agent sees
// it. It reports the p50 and p99 latency of the sequential case.
func BenchmarkAgentGet(b *testing.B) {
	api := newFakeAPI()
	api.put("prod/app/db", benchValue)
	ta := startAgent(b, mustConfig(b, `log_level = "info"`), api, Options{})
	u := ta.url + "/secretsmanager/get?secretId=prod/app/db"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	newReq := func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Aws-Parameters-Secrets-Token", testToken)
		return req
	}
	getOnce := func(req *http.Request) {
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	getOnce(newReq()) // warm the cache

	b.Run("sequential", func(b *testing.B) {
		req := newReq()
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			getOnce(req)
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := newReq()
			for pb.Next() {
				getOnce(req)
			}
		})
	})
}

// BenchmarkHandler is the agent's own share of a GET: ServeHTTP on a
// cached secret, without the network.
func BenchmarkHandler(b *testing.B) {
	api := newFakeAPI()
	api.put("prod/app/db", benchValue)
	cfg := mustConfig(b, `log_level = "info"`)
	a, err := New(cfg, Options{API: api, Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	req := httptest.NewRequest(http.MethodGet, "/secretsmanager/get?secretId=prod/app/db", nil)
	req.Header.Set("X-Aws-Parameters-Secrets-Token", testToken)
	a.ServeHTTP(httptest.NewRecorder(), req)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
