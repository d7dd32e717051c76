package keys_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/keys"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// BenchmarkRewrap measures the re-wrap job over 5,000 secret versions of
// 1 KiB with the default batch size, in envelopes per second.
func BenchmarkRewrap(b *testing.B) {
	const n = 5000
	value := make([]byte, 1024)
	for range b.N {
		b.StopTimer()
		st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "rotor.db"))
		if err != nil {
			b.Fatal(err)
		}
		root, _ := keyring.NewMasterKey()
		kr, _ := keyring.New(root)
		err = st.Write(b.Context(), func(tx store.Tx) error {
			for i := range n {
				arn := fmt.Sprintf("arn:aws:secretsmanager:us-east-1:123456789012:secret:s%05d-abcdef", i)
				if err := tx.CreateSecret(b.Context(), store.Secret{ARN: arn, Name: fmt.Sprintf("s%05d", i)}); err != nil {
					return err
				}
				sealed, id, err := kr.Seal(value, append([]byte(arn+"\x00"), "v1"...))
				if err != nil {
					return err
				}
				if err := tx.CreateVersion(b.Context(), store.Version{SecretARN: arn, VersionID: "v1", Sealed: sealed, KeyID: id}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		ks, err := keys.Open(b.Context(), keys.Config{Store: st, Keyring: kr, Root: root, Grace: time.Nanosecond})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ks.Rotate(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		for {
			res, err := ks.Step(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			if !res.More && res.Wait == 0 {
				break
			}
		}
		b.ReportMetric(n/time.Since(start).Seconds(), "envelopes/s")
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}
