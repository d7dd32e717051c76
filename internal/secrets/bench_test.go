package secrets_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// BenchmarkPutSecretValue measures the domain side of PutSecretValue on the
// SQLite store (seal, version insert, label moves, durable commit), 16
// writers round robin over 1,000 secrets.
func BenchmarkPutSecretValue(b *testing.B) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "rotor.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	mk, _ := keyring.NewMasterKey()
	kr, _ := keyring.New(mk)
	svc := secrets.New(secrets.Config{Region: "us-east-1", AccountID: "000000000000", Store: st, Keyring: kr})
	const n = 1000
	for i := range n {
		if _, err := svc.CreateSecret(b.Context(), secrets.CreateSecretInput{Name: fmt.Sprintf("s%d", i), Value: secrets.StringValue("v")}); err != nil {
			b.Fatal(err)
		}
	}
	value := strings.Repeat("v", 200)
	var next atomic.Int64
	b.SetParallelism(8) // 16 writers on 2 CPUs
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % n
			if _, err := svc.PutSecretValue(b.Context(), secrets.PutSecretValueInput{SecretID: fmt.Sprintf("s%d", i), Value: secrets.StringValue(value)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
