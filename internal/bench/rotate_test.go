package bench

import (
	"errors"
	"strings"
	"testing"
)

func TestRotateOptions(t *testing.T) {
	_, err := Rotate(t.Context(), RotateOptions{Engines: []string{"oracle"}, Rotations: 1, Concurrency: 1})
	var oe *OptionsError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), `"oracle" is not one of postgres, mariadb, redis, rabbitmq`) {
		t.Errorf("an unknown engine: %v", err)
	}
	if _, err := Rotate(t.Context(), RotateOptions{Rotations: 0, Concurrency: 1}); !errors.As(err, &oe) ||
		!strings.Contains(err.Error(), "name at least one") || !strings.Contains(err.Error(), "at least 1") {
		t.Errorf("no engine and no rotations: %v, want both reported", err)
	}
	if got := (rotateTarget{single: "s"}).batchFunction(); got != "s" {
		t.Errorf("batch function without alternating users: %q", got)
	}
	if got := (rotateTarget{single: "s", alt: "a"}).batchFunction(); got != "a" {
		t.Errorf("batch function with alternating users: %q", got)
	}
}
