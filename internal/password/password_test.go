package password_test

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/password"
)

// The test's own copy of the alphabet, so the tests do not trust the code
// they check.
const (
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower  = "abcdefghijklmnopqrstuvwxyz"
	digits = "0123456789"
	punct  = `!"#$%&'()*+,-./:;<=>?@[\]^_` + "`{|}~"
)

func seeded(seed uint64) io.Reader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// model computes independently what a password generated with o may contain
// and which character sets it must touch.
func model(o password.Options) (allowed string, required []string) {
	drop := func(set string) string {
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune(o.ExcludeCharacters, r) {
				return -1
			}
			return r
		}, set)
	}
	for _, c := range []struct {
		set      string
		excluded bool
	}{{upper, o.ExcludeUppercase}, {lower, o.ExcludeLowercase}, {digits, o.ExcludeNumbers}, {punct, o.ExcludePunctuation}} {
		if c.excluded {
			continue
		}
		kept := drop(c.set)
		allowed += kept
		if o.RequireEachIncludedType && kept != "" {
			required = append(required, kept)
		}
	}
	if o.IncludeSpace {
		allowed += drop(" ")
	}
	return allowed, required
}

// check reports what is wrong with p as a password generated with o.
func check(t *testing.T, o password.Options, p string) {
	t.Helper()
	allowed, required := model(o)
	if len(p) != o.Length {
		t.Fatalf("len(password) = %d, want %d", len(p), o.Length)
	}
	for i := 0; i < len(p); i++ {
		if !strings.ContainsRune(allowed, rune(p[i])) {
			t.Fatalf("password has %q at %d, not in the alphabet %q", p[i], i, allowed)
		}
	}
	for _, set := range required {
		if !strings.ContainsAny(p, set) {
			t.Fatalf("password %q has no character of the required set %q", p, set)
		}
	}
}

func with(f func(*password.Options)) password.Options {
	o := password.Defaults()
	f(&o)
	return o
}

func TestDefaults(t *testing.T) {
	got := password.Defaults()
	want := password.Options{Length: 32, RequireEachIncludedType: true}
	if got != want {
		t.Errorf("Defaults() = %+v, want %+v", got, want)
	}
}

func TestGenerateOptions(t *testing.T) {
	tests := []struct {
		name string
		opts password.Options
	}{
		{"defaults", password.Defaults()},
		{"length 1 without required types", password.Options{Length: 1}},
		{"length 4 requires each of four", with(func(o *password.Options) { o.Length = 4 })},
		{"length 4096", with(func(o *password.Options) { o.Length = 4096 })},
		{"exclude numbers", with(func(o *password.Options) { o.ExcludeNumbers = true })},
		{"exclude punctuation", with(func(o *password.Options) { o.ExcludePunctuation = true })},
		{"exclude uppercase", with(func(o *password.Options) { o.ExcludeUppercase = true })},
		{"exclude lowercase", with(func(o *password.Options) { o.ExcludeLowercase = true })},
		{"include space", with(func(o *password.Options) { o.IncludeSpace = true })},
		{"include space, space excluded", with(func(o *password.Options) { o.IncludeSpace = true; o.ExcludeCharacters = " " })},
		{"only digits", with(func(o *password.Options) {
			o.ExcludeUppercase, o.ExcludeLowercase, o.ExcludePunctuation = true, true, true
		})},
		{"only space", password.Options{Length: 8, IncludeSpace: true, ExcludeUppercase: true, ExcludeLowercase: true, ExcludeNumbers: true, ExcludePunctuation: true, RequireEachIncludedType: true}},
		{"exclude characters that break URLs and shells", with(func(o *password.Options) { o.ExcludeCharacters = `/@"'\` + "`$:?#%&" })},
		{"exclude characters with non-ASCII", with(func(o *password.Options) { o.ExcludeCharacters = "é€aA0!\x00\xff" })},
		{"exclude every digit but one", with(func(o *password.Options) { o.Length = 4; o.ExcludeCharacters = "012345689" })},
		{"exclude all punctuation by characters", with(func(o *password.Options) { o.Length = 3; o.ExcludeCharacters = punct })},
		{"no required types", with(func(o *password.Options) { o.Length = 12; o.RequireEachIncludedType = false })},
		{"everything", password.Options{Length: 64, ExcludeCharacters: "xyz", IncludeSpace: true, RequireEachIncludedType: true}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := seeded(uint64(i))
			for range 200 {
				p, err := password.Generate(r, tt.opts)
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				check(t, tt.opts, p)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name string
		opts password.Options
		want error
		msg  string // a substring of the message
	}{
		{"zero length", password.Options{}, password.ErrLength, "(got 0)"},
		{"negative length", password.Options{Length: -1}, password.ErrLength, "between 1 and 4096"},
		{"length 4097", password.Options{Length: 4097}, password.ErrLength, "(got 4097)"},
		{"exclude characters too long", password.Options{Length: 8, ExcludeCharacters: strings.Repeat("a", 4097)}, password.ErrExcludeCharactersLength, "(got 4097)"},
		{"exclude characters counted in characters", password.Options{Length: 8, ExcludeCharacters: strings.Repeat("é", 4097)}, password.ErrExcludeCharactersLength, "(got 4097)"},
		{"every class excluded", password.Options{Length: 8, ExcludeUppercase: true, ExcludeLowercase: true, ExcludeNumbers: true, ExcludePunctuation: true}, password.ErrNoCharacters, "exclude every character"},
		{"every character excluded", password.Options{Length: 8, ExcludeCharacters: upper + lower + digits + punct + " ", IncludeSpace: true}, password.ErrNoCharacters, "exclude every character"},
		{"shorter than four types", with(func(o *password.Options) { o.Length = 3 }), password.ErrTooShort, "3 characters cannot hold one of each of the 4 types"},
		{"shorter than two types", password.Options{Length: 1, ExcludeUppercase: true, ExcludeLowercase: true, RequireEachIncludedType: true}, password.ErrTooShort, "of the 2 types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := password.Generate(seeded(1), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Generate() = %q, %v; want error %v", p, err, tt.want)
			}
			if p != "" {
				t.Errorf("Generate() returned %q with an error", p)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
	t.Run("4096 excluded characters are allowed", func(t *testing.T) {
		o := with(func(o *password.Options) { o.ExcludeCharacters = strings.Repeat("a", 4096) })
		if _, err := password.Generate(seeded(1), o); err != nil {
			t.Fatal(err)
		}
	})
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestGenerateReaderError(t *testing.T) {
	boom := errors.New("boom")
	for name, r := range map[string]io.Reader{
		"error":   failingReader{boom},
		"short":   strings.NewReader("abc"),
		"no data": strings.NewReader(""),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := password.Generate(r, password.Defaults())
			if err == nil {
				t.Fatalf("Generate() = %q, nil; want an error", p)
			}
			if name == "error" && !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the reader's error", err)
			}
		})
	}
}

func TestGenerateCryptoRand(t *testing.T) {
	o := password.Defaults()
	a, err := password.Generate(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := password.Generate(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	check(t, o, a)
	check(t, o, b)
	if a == b {
		t.Errorf("two passwords from crypto/rand are equal: %q", a)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	o := password.Defaults()
	a, _ := password.Generate(seeded(42), o)
	b, _ := password.Generate(seeded(42), o)
	c, _ := password.Generate(seeded(43), o)
	if a != b {
		t.Errorf("same seed, different passwords: %q, %q", a, b)
	}
	if a == c {
		t.Errorf("different seeds, same password: %q", a)
	}
}

// TestGenerateUniform checks that every character of the default alphabet
// turns up about equally often. The seed is fixed, so the test cannot flake;
// the bounds are wide enough that any seed would almost surely pass and
// narrow enough to catch a modulo bias (which would skew 68 of 94 characters
// by a third: 256 = 2·94 + 68).
func TestGenerateUniform(t *testing.T) {
	o := password.Options{Length: 4096}
	const passwords = 49 // 200,704 characters
	counts := map[byte]int{}
	r := seeded(7)
	for range passwords {
		p, err := password.Generate(r, o)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(p); i++ {
			counts[p[i]]++
		}
	}
	alphabet := upper + lower + digits + punct
	if len(counts) != len(alphabet) {
		t.Fatalf("saw %d distinct characters, want %d", len(counts), len(alphabet))
	}
	n := float64(passwords * o.Length)
	want := n / float64(len(alphabet))
	var chi2 float64
	for i := 0; i < len(alphabet); i++ {
		got := float64(counts[alphabet[i]])
		if math.Abs(got-want) > 0.1*want { // about 4.6 standard deviations
			t.Errorf("character %q appeared %v times, want %.0f ± 10%%", alphabet[i], got, want)
		}
		chi2 += (got - want) * (got - want) / want
	}
	// 93 degrees of freedom: mean 93, standard deviation 13.6.
	if chi2 > 180 {
		t.Errorf("chi-square = %.1f over %d characters, want < 180", chi2, len(alphabet))
	}
	t.Logf("chi-square %.1f (93 degrees of freedom)", chi2)
}

// TestRequireEachUniform checks the distribution when RequireEachIncludedType
// constrains a tiny alphabet: with one character per type and four
// characters, the valid passwords are the 24 orderings of "Aa1!", and each
// must be equally likely.
func TestRequireEachUniform(t *testing.T) {
	keep := "Aa1!"
	exclude := strings.Map(func(r rune) rune {
		if strings.ContainsRune(keep, r) {
			return -1
		}
		return r
	}, upper+lower+digits+punct)
	o := password.Options{Length: 4, ExcludeCharacters: exclude, RequireEachIncludedType: true}
	const draws = 24_000
	counts := map[string]int{}
	r := seeded(11)
	for range draws {
		p, err := password.Generate(r, o)
		if err != nil {
			t.Fatal(err)
		}
		check(t, o, p)
		counts[p]++
	}
	if len(counts) != 24 {
		t.Fatalf("saw %d orderings, want 24", len(counts))
	}
	for p, got := range counts {
		if got < 850 || got > 1150 { // want 1000, standard deviation 31
			t.Errorf("%q drawn %d times, want 1000 ± 150", p, got)
		}
	}
}

func TestRequireEachShortPasswords(t *testing.T) {
	r := seeded(3)
	for i := range 10_000 {
		o := password.Defaults()
		o.Length = 4 + i%5
		if i%3 == 0 {
			o.IncludeSpace = true
		}
		if i%7 == 0 {
			o.ExcludeCharacters = "0123456789abcdefghijklmnopqrstuvwxy!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"
		}
		p, err := password.Generate(r, o)
		if err != nil {
			t.Fatalf("Generate(%+v): %v", o, err)
		}
		check(t, o, p)
	}
}

func FuzzGenerate(f *testing.F) {
	f.Add(uint64(0), 32, "", uint8(0b100000))
	f.Add(uint64(1), 4, "", uint8(0b100000))
	f.Add(uint64(2), 1, "", uint8(0))
	f.Add(uint64(3), 16, " ", uint8(0b110000))
	f.Add(uint64(4), 8, "0123456789", uint8(0b101110))
	f.Add(uint64(5), 3, "é\x00\xff", uint8(0b100001))
	f.Add(uint64(6), 0, "", uint8(0))
	f.Add(uint64(7), 4097, "", uint8(0))
	f.Add(uint64(8), 8, "", uint8(0b001111))
	f.Fuzz(func(t *testing.T, seed uint64, length int, exclude string, flags uint8) {
		o := password.Options{
			Length:                  length,
			ExcludeCharacters:       exclude,
			ExcludeNumbers:          flags&1 != 0,
			ExcludePunctuation:      flags&2 != 0,
			ExcludeUppercase:        flags&4 != 0,
			ExcludeLowercase:        flags&8 != 0,
			IncludeSpace:            flags&16 != 0,
			RequireEachIncludedType: flags&32 != 0,
		}
		p, err := password.Generate(seeded(seed), o)
		allowed, required := model(o)
		switch {
		case length < 1 || length > 4096:
			if !errors.Is(err, password.ErrLength) {
				t.Fatalf("length %d: err = %v, want ErrLength", length, err)
			}
		case len([]rune(exclude)) > 4096:
			if !errors.Is(err, password.ErrExcludeCharactersLength) {
				t.Fatalf("err = %v, want ErrExcludeCharactersLength", err)
			}
		case allowed == "":
			if !errors.Is(err, password.ErrNoCharacters) {
				t.Fatalf("err = %v, want ErrNoCharacters", err)
			}
		case length < len(required):
			if !errors.Is(err, password.ErrTooShort) {
				t.Fatalf("err = %v, want ErrTooShort", err)
			}
		default:
			if err != nil {
				t.Fatalf("Generate(%+v): %v", o, err)
			}
			check(t, o, p)
		}
	})
}

func BenchmarkGenerate(b *testing.B) {
	for _, bc := range []struct {
		name string
		r    func() io.Reader
		opts password.Options
	}{
		{"defaults/crypto", func() io.Reader { return nil }, password.Defaults()},
		{"defaults/chacha8", func() io.Reader { return seeded(1) }, password.Defaults()},
		{"length4/chacha8", func() io.Reader { return seeded(1) }, with(func(o *password.Options) { o.Length = 4 })},
		{"length4096/crypto", func() io.Reader { return nil }, with(func(o *password.Options) { o.Length = 4096 })},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := bc.r()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := password.Generate(r, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
