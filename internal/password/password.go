// Package password generates random passwords with the semantics of AWS
// Secrets Manager's GetRandomPassword. The API handler and the database
// rotators both use it, so a password a rotator sets obeys the same options a
// client could ask GetRandomPassword for.
//
// Callers build Options from Defaults (length 32, at least one character of
// each included type), change what they need and call Generate with a source
// of randomness: nil means crypto/rand, tests pass a seeded generator.
//
// # Alphabet
//
// The alphabet is the 26 uppercase and 26 lowercase ASCII letters, the ten
// digits and AWS's 32 punctuation characters
//
//	!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
//
// plus the space when IncludeSpace is set; minus every class an Exclude*
// field names and every character in ExcludeCharacters. Characters in
// ExcludeCharacters that are not in the alphabet (other letters, control
// characters, non-ASCII) are ignored, as AWS does.
//
// # Required types
//
// RequireEachIncludedType requires one uppercase letter, one lowercase
// letter, one digit and one punctuation character — the four types AWS
// documents for the option. The space is not a required type: it is an
// opt-in extra character, and demanding it would put a space in every short
// password, which is rarely what a caller wants from a flag that only says
// spaces are allowed. A type whose characters are all excluded (by its
// Exclude* flag or by ExcludeCharacters) is not required.
//
// # Randomness
//
// Each character is drawn uniformly from the alphabet by rejection sampling
// on random bytes, so there is no modulo bias. With RequireEachIncludedType,
// Generate draws whole candidates and discards those lacking a required type,
// which yields exactly the uniform distribution over passwords that contain
// every type. Candidates are bounded (maxCandidates); when a short password
// or a sparse type makes every candidate fail, Generate falls back to one
// uniformly drawn character of each required type, the rest from the whole
// alphabet, shuffled by an unbiased Fisher–Yates shuffle. The fallback is not
// exactly the conditional uniform distribution, but every character is still
// drawn from the random source alone and every required type appears.
//
// # Errors
//
// Invalid options are reported with errors that wrap one of ErrLength,
// ErrExcludeCharactersLength, ErrNoCharacters or ErrTooShort, test with
// errors.Is; their messages are written for an API client and contain no
// generated material. An error from the random source is returned wrapped.
//
// Generate is safe for concurrent use when its reader is; crypto/rand is.
package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// The limits of the GetRandomPassword request.
const (
	MinLength                  = 1
	MaxLength                  = 4096
	DefaultLength              = 32
	MaxExcludeCharactersLength = 4096
)

// Punctuation holds AWS's 32 punctuation characters.
const Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

const (
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower  = "abcdefghijklmnopqrstuvwxyz"
	digits = "0123456789"
	space  = " "
)

// maxCandidates bounds the whole candidates Generate draws before it falls
// back to placing one character of each required type. With the default
// options a 32-character candidate lacks a type about once in 36 draws (it is
// nearly always the digits), so the fallback serves only very short passwords
// or types that exclusions have left with very few characters.
const maxCandidates = 100

// Errors Generate returns for invalid options, wrapped with the offending
// value.
var (
	// ErrLength: Length is outside MinLength–MaxLength.
	ErrLength = errors.New("password length must be between 1 and 4096")
	// ErrExcludeCharactersLength: ExcludeCharacters has more than
	// MaxExcludeCharactersLength characters.
	ErrExcludeCharactersLength = errors.New("excluded characters must be at most 4096 characters long")
	// ErrNoCharacters: the options exclude every character.
	ErrNoCharacters = errors.New("the options exclude every character, so no password can be generated")
	// ErrTooShort: RequireEachIncludedType asks for more character types than
	// the password has characters.
	ErrTooShort = errors.New("password length is shorter than the number of character types required")
)

// Options are GetRandomPassword's request fields. The zero value is not
// useful (Length 0 is an error); start from Defaults.
type Options struct {
	// Length is the number of characters, MinLength–MaxLength.
	Length int
	// ExcludeCharacters lists characters that must not appear; at most
	// MaxExcludeCharactersLength characters.
	ExcludeCharacters string

	// The Exclude flags remove a whole type from the alphabet.
	ExcludeNumbers     bool
	ExcludePunctuation bool
	ExcludeUppercase   bool
	ExcludeLowercase   bool
	// IncludeSpace adds the space character to the alphabet.
	IncludeSpace bool
	// RequireEachIncludedType requires at least one uppercase letter,
	// lowercase letter, digit and punctuation character, of those types
	// that are not wholly excluded. The space is never required.
	RequireEachIncludedType bool
}

// Defaults returns AWS's defaults: 32 characters of every type, at least one
// of each.
func Defaults() Options {
	return Options{Length: DefaultLength, RequireEachIncludedType: true}
}

// charset is the alphabet after exclusions, laid out as contiguous runs, one
// per type, so a type is a slice of the alphabet.
type charset struct {
	chars [len(upper) + len(lower) + len(digits) + len(Punctuation) + len(space)]byte
	n     int
	// class maps a byte to 1 + the index in runs of its required type, 0
	// when the byte is in no required type.
	class [256]uint8
	runs  [4]run // required types that kept at least one character
	nruns int
}

type run struct{ start, end int }

func newCharset(o Options) (*charset, error) {
	if n := utf8.RuneCountInString(o.ExcludeCharacters); n > MaxExcludeCharactersLength {
		return nil, fmt.Errorf("%w (got %d)", ErrExcludeCharactersLength, n)
	}
	var excluded [256]bool
	for i := 0; i < len(o.ExcludeCharacters); i++ {
		// Bytes of multibyte runes are all >= 0x80, outside the alphabet.
		excluded[o.ExcludeCharacters[i]] = true
	}
	cs := new(charset)
	add := func(set string, required bool) {
		start := cs.n
		for i := 0; i < len(set); i++ {
			if !excluded[set[i]] {
				cs.chars[cs.n] = set[i]
				cs.n++
			}
		}
		if !required || cs.n == start {
			return
		}
		cs.runs[cs.nruns] = run{start, cs.n}
		cs.nruns++
		for _, c := range cs.chars[start:cs.n] {
			cs.class[c] = uint8(cs.nruns)
		}
	}
	if !o.ExcludeUppercase {
		add(upper, true)
	}
	if !o.ExcludeLowercase {
		add(lower, true)
	}
	if !o.ExcludeNumbers {
		add(digits, true)
	}
	if !o.ExcludePunctuation {
		add(Punctuation, true)
	}
	if o.IncludeSpace {
		add(space, false)
	}
	if cs.n == 0 {
		return nil, ErrNoCharacters
	}
	return cs, nil
}

// Generate returns a random password built as o describes, reading
// randomness from r, or from crypto/rand when r is nil. Invalid options give
// an error wrapping ErrLength, ErrExcludeCharactersLength, ErrNoCharacters or
// ErrTooShort; a failing reader gives its error, wrapped.
func Generate(r io.Reader, o Options) (string, error) {
	if o.Length < MinLength || o.Length > MaxLength {
		return "", fmt.Errorf("%w (got %d)", ErrLength, o.Length)
	}
	cs, err := newCharset(o)
	if err != nil {
		return "", err
	}
	required := 0
	if o.RequireEachIncludedType {
		required = cs.nruns
	}
	if o.Length < required {
		return "", fmt.Errorf("%w: %d characters cannot hold one of each of the %d types required; lengthen the password, exclude a type or turn off RequireEachIncludedType",
			ErrTooShort, o.Length, required)
	}
	if r == nil {
		r = rand.Reader
	}
	s := sampler{r: r}
	buf := make([]byte, o.Length)
	alphabet := cs.chars[:cs.n]
	for range maxCandidates {
		if err := s.fill(buf, alphabet); err != nil {
			return "", err
		}
		if cs.hasEach(buf, required) {
			return string(buf), nil
		}
	}
	if err := cs.placeEach(&s, buf, required); err != nil {
		return "", err
	}
	return string(buf), nil
}

// placeEach is the fallback: it fills p with one uniformly drawn character of
// each of the first required runs, the rest from the whole alphabet, and
// shuffles p with Fisher–Yates.
func (cs *charset) placeEach(s *sampler, p []byte, required int) error {
	for i := range required {
		rn := cs.runs[i]
		k, err := s.intn(rn.end - rn.start)
		if err != nil {
			return err
		}
		p[i] = cs.chars[rn.start+k]
	}
	if err := s.fill(p[required:], cs.chars[:cs.n]); err != nil {
		return err
	}
	for i := len(p) - 1; i > 0; i-- {
		j, err := s.intn(i + 1)
		if err != nil {
			return err
		}
		p[i], p[j] = p[j], p[i]
	}
	return nil
}

// hasEach reports whether p contains a character of each of the first
// required runs.
func (cs *charset) hasEach(p []byte, required int) bool {
	if required == 0 {
		return true
	}
	var seen uint8
	all := uint8(1)<<required - 1
	for _, c := range p {
		if k := cs.class[c]; k != 0 {
			seen |= 1 << (k - 1)
			if seen == all {
				return true
			}
		}
	}
	return false
}

// sampler draws unbiased integers from a byte stream, reading it in blocks.
type sampler struct {
	r   io.Reader
	buf [128]byte
	pos int
	end int
}

func (s *sampler) byte() (byte, error) {
	if s.pos == s.end {
		if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
			return 0, fmt.Errorf("password: reading random bytes: %w", err)
		}
		s.pos, s.end = 0, len(s.buf)
	}
	b := s.buf[s.pos]
	s.pos++
	return b, nil
}

// intn returns a uniform integer in [0, n) for 1 <= n <= 65536, rejecting
// the values at the top of the byte (or two-byte) range that would make some
// results likelier than others.
func (s *sampler) intn(n int) (int, error) {
	if n <= 256 {
		limit := 256 - 256%n
		for {
			b, err := s.byte()
			if err != nil {
				return 0, err
			}
			if int(b) < limit {
				return int(b) % n, nil
			}
		}
	}
	limit := 65536 - 65536%n
	for {
		hi, err := s.byte()
		if err != nil {
			return 0, err
		}
		lo, err := s.byte()
		if err != nil {
			return 0, err
		}
		if v := int(hi)<<8 | int(lo); v < limit {
			return v % n, nil
		}
	}
}

// fill sets each byte of p to a uniform choice from alphabet, which holds at
// most 95 characters.
func (s *sampler) fill(p []byte, alphabet []byte) error {
	n := len(alphabet)
	limit := 256 - 256%n
	for i := 0; i < len(p); {
		b, err := s.byte()
		if err != nil {
			return err
		}
		if int(b) < limit {
			p[i] = alphabet[int(b)%n]
			i++
		}
	}
	return nil
}
