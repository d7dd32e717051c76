package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/rotor-secrets/rotor/client"
)

// fileOutput is the state of one [[file]]; only its goroutine (runFile)
// touches it after New.
type fileOutput struct {
	cfg    FileConfig
	notify chan struct{}

	version string // the version last rendered, "" before the first
	failing string // the last failure logged, to log each kind once
}

// poke wakes f's goroutine, unless a wake-up is already pending.
func (f *fileOutput) poke() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// runFile keeps f up to date until ctx is done.
func (a *Agent) runFile(ctx context.Context, f *fileOutput) {
	tick := time.NewTicker(a.filePoll)
	defer tick.Stop()
	for {
		a.syncFile(ctx, f)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.notify:
		}
	}
}

// syncFile renders f if its secret's version changed since the last render.
func (a *Agent) syncFile(ctx context.Context, f *fileOutput) {
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	s, err := a.cache.GetStage(rctx, f.cfg.SecretID, f.cfg.VersionStage)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			a.fileFailed(f, "read", err)
		}
		return
	}
	if s.VersionID == f.version {
		return
	}
	changed, err := a.writeFile(f, s)
	if err != nil {
		a.fileFailed(f, "write", err)
		return
	}
	if f.failing != "" {
		a.log.Info("file output recovered", "path", f.cfg.Path, "secret_id", f.cfg.SecretID)
		f.failing = ""
	}
	f.version = s.VersionID
	if !changed {
		a.log.Debug("file unchanged", "path", f.cfg.Path, "secret_id", f.cfg.SecretID, "version_id", s.VersionID)
		return
	}
	a.log.Info("file written", "path", f.cfg.Path, "secret_id", f.cfg.SecretID, "version_id", s.VersionID)
	if len(f.cfg.Command) > 0 {
		a.runCommand(ctx, f, s)
	}
}

// fileFailed logs a failure of f once per kind and error text, not at every
// poll.
func (a *Agent) fileFailed(f *fileOutput, what string, err error) {
	key := what + ": " + err.Error()
	if key == f.failing {
		return
	}
	f.failing = key
	a.log.Error("file output failed", "path", f.cfg.Path, "secret_id", f.cfg.SecretID, "step", what, "err", err)
}

// writeFile renders s into f's file unless the file already holds exactly
// that content, and reports whether it wrote.
func (a *Agent) writeFile(f *fileOutput, s *client.Secret) (bool, error) {
	content, err := render(&f.cfg, s)
	if err != nil {
		return false, fmt.Errorf("render template: %w", err)
	}
	if old, err := os.ReadFile(f.cfg.Path); err == nil && bytes.Equal(old, content) {
		// Same content (say, after a restart, or a new version with the
		// same fields the template uses): keep the file, only fix its mode.
		if fi, err := os.Stat(f.cfg.Path); err == nil && fi.Mode().Perm() != f.cfg.Mode {
			if err := os.Chmod(f.cfg.Path, f.cfg.Mode); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	if err := writeAtomic(f.cfg.Path, content, f.cfg.Mode); err != nil {
		return false, err
	}
	return true, nil
}

// writeAtomic replaces path with data: a temporary file in the same
// directory gets the mode, the data and an fsync, then takes path's name,
// and the directory is synced. A reader sees the old file or the new one,
// never a part. The temporary file is created 0600, so the content is never
// more exposed than mode allows.
func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // the rename is durable; not all systems can sync a directory
		_ = d.Close()
	}
	return nil
}

// runCommand runs f's command once, bounded by its timeout. The command
// learns what changed from ROTOR_AGENT_FILE, ROTOR_AGENT_SECRET_ID and
// ROTOR_AGENT_VERSION_ID; its output goes to CommandOutput, never to the
// log.
func (a *Agent) runCommand(ctx context.Context, f *fileOutput, s *client.Secret) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.cfg.Command[0], f.cfg.Command[1:]...)
	cmd.Env = append(os.Environ(),
		"ROTOR_AGENT_FILE="+f.cfg.Path,
		"ROTOR_AGENT_SECRET_ID="+f.cfg.SecretID,
		"ROTOR_AGENT_VERSION_ID="+s.VersionID,
	)
	cmd.Stdout, cmd.Stderr = a.cmdOut, a.cmdOut
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	attrs := []any{"path", f.cfg.Path, "command", f.cfg.Command[0], "duration_ms", time.Since(start).Milliseconds()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		a.log.Info("file command ran", attrs...)
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		a.log.Error("file command timed out", append(attrs, "timeout", f.cfg.CommandTimeout.String())...)
	case errors.As(err, &exitErr):
		a.log.Error("file command failed", append(attrs, "exit_code", exitErr.ExitCode())...)
	default:
		a.log.Error("file command failed", append(attrs, "err", err)...)
	}
}
