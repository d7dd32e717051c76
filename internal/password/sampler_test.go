package password

import (
	"math/rand/v2"
	"testing"
)

// TestIntnUniform covers the two-byte path the fallback's shuffle uses for
// positions past 256.
func TestIntnUniform(t *testing.T) {
	for _, n := range []int{1, 3, 94, 95, 256, 257, 1000, 4096} {
		s := sampler{r: rand.NewChaCha8([32]byte{byte(n), byte(n >> 8)})}
		counts := make([]int, n)
		draws := 200 * n
		for range draws {
			v, err := s.intn(n)
			if err != nil {
				t.Fatal(err)
			}
			if v < 0 || v >= n {
				t.Fatalf("intn(%d) = %d", n, v)
			}
			counts[v]++
		}
		for v, got := range counts {
			// want 200, standard deviation about 14
			if n > 1 && (got < 120 || got > 280) {
				t.Errorf("intn(%d) gave %d %d times, want about 200", n, v, got)
			}
		}
	}
}

// TestFallbackShuffleUniform forces the fallback (no candidate rounds) on
// the four-character alphabet "Aa1!" and checks that the shuffle makes all 24
// orderings equally likely.
func TestFallbackShuffleUniform(t *testing.T) {
	o := Options{Length: 4, RequireEachIncludedType: true}
	for _, c := range upper + lower + digits + Punctuation {
		switch c {
		case 'A', 'a', '1', '!':
		default:
			o.ExcludeCharacters += string(c)
		}
	}
	cs, err := newCharset(o)
	if err != nil {
		t.Fatal(err)
	}
	s := &sampler{r: rand.NewChaCha8([32]byte{9})}
	counts := map[string]int{}
	buf := make([]byte, 4)
	for range 24_000 {
		if err := cs.placeEach(s, buf, cs.nruns); err != nil {
			t.Fatal(err)
		}
		counts[string(buf)]++
	}
	if len(counts) != 24 {
		t.Fatalf("saw %d orderings, want 24: %v", len(counts), counts)
	}
	for p, got := range counts {
		if got < 850 || got > 1150 {
			t.Errorf("%q drawn %d times, want 1000 ± 150", p, got)
		}
	}
}
