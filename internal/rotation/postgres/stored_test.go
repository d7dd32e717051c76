package postgres

import (
	"fmt"
	"testing"
)

func TestMatchMemo(t *testing.T) {
	mm := newMatchMemo()
	mm.add("u", "v", "p")
	for _, tc := range []struct {
		user, verifier, password string
		want                     bool
	}{
		{"u", "v", "p", true},
		{"u", "v", "q", false},
		{"w", "v", "p", false},
		{"u", "w", "p", false},
		{"u", "vp", "", false}, // the fields are delimited
	} {
		if got := mm.has(tc.user, tc.verifier, tc.password); got != tc.want {
			t.Errorf("has(%q, %q, %q) = %v, want %v", tc.user, tc.verifier, tc.password, got, tc.want)
		}
	}
	for i := range maxMemo {
		mm.add("u", fmt.Sprint(i), "p")
	}
	if len(mm.m) > maxMemo {
		t.Errorf("the memo holds %d entries, more than %d", len(mm.m), maxMemo)
	}
}

// Rotator.matches consults the memo before computing, remembers what it
// computed, and never vouches for a role that cannot log in.
func TestRotatorMatchesUsesMemo(t *testing.T) {
	r := New(Options{})
	v, err := newVerifier("pw")
	if err != nil {
		t.Fatal(err)
	}
	l := storedLogin{exists: true, canLogin: true, password: v}
	if match, _ := r.matches(l, "u", "pw"); !match {
		t.Fatal("the right password does not match")
	}
	if !r.memo.has("u", v, "pw") {
		t.Error("a successful check was not remembered")
	}
	// Only the memo can make this match: the verifier is not one.
	r.memo.add("u", "not a verifier", "pw")
	if match, _ := r.matches(storedLogin{exists: true, canLogin: true, password: "not a verifier"}, "u", "pw"); !match {
		t.Error("the memo was not consulted")
	}
	l.canLogin = false
	if match, _ := r.matches(l, "u", "pw"); match {
		t.Error("a role that cannot log in matches")
	}
}
