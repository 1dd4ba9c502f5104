package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/oomscope/oomscope/internal/cgscratch"
)

// env is what the phases share.
type env struct {
	cfg     config
	log     zerolog.Logger
	tmp     string // removed at the end
	keep    string // binaries and profiles: cfg.pprofDir, or tmp
	root    string // the repository (main module)
	bench   string // the bench module
	bins    binaries
	h       *cgscratch.Hierarchy
	watch   *watcher
	machine machine
}

type binaries struct {
	oomscope, alloc, oomreader, cadvisor string
}

// machine is what the doc says about where the figures come from.
type machine struct {
	Date, Kernel, GoVersion, CPU, Mem, Cgroup, Nproc string
	LoadBefore, LoadAfter                            string
}

func newEnv(ctx context.Context, cfg config, log zerolog.Logger) (*env, error) {
	e := &env{cfg: cfg, log: log}
	var err error
	if e.tmp, err = os.MkdirTemp("", "stormbench-"); err != nil {
		return nil, err
	}
	e.keep = e.tmp
	if cfg.pprofDir != "" {
		if e.keep, err = filepath.Abs(cfg.pprofDir); err != nil {
			e.close()
			return nil, err
		}
		if err := os.MkdirAll(e.keep, 0o755); err != nil {
			e.close()
			return nil, err
		}
	}
	if err := e.locate(ctx); err != nil {
		e.close()
		return nil, err
	}
	if err := e.build(ctx); err != nil {
		e.close()
		return nil, err
	}
	e.machine = describeMachine(ctx)
	if e.watch, err = startWatcher(ctx, log); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.watch != nil {
		e.watch.stop()
	}
	if e.tmp != "" {
		if err := os.RemoveAll(e.tmp); err != nil {
			e.log.Error().Err(err).Str("dir", e.tmp).Msg("removing the temporary directory")
		}
	}
}

// locate finds the bench module (the working directory's) and the
// repository above it.
func (e *env) locate(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	b, err := os.ReadFile(gomod)
	if err != nil || !bytes.Contains(b, []byte("module github.com/oomscope/oomscope/bench\n")) {
		return fmt.Errorf("run stormbench from the bench module (bench/ of the repository): go env GOMOD = %q", gomod)
	}
	e.bench = filepath.Dir(gomod)
	e.root = filepath.Dir(e.bench)
	return nil
}

// buildTimeout bounds the builds.
const buildTimeout = 15 * time.Minute

// build builds oomscope and the allocator with the main module's go.mod
// (as `make build` does), and the readers with the bench module's.
func (e *env) build(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	e.bins = binaries{
		oomscope:  filepath.Join(e.keep, "oomscope"),
		alloc:     filepath.Join(e.keep, "stormalloc"),
		oomreader: filepath.Join(e.keep, "oomreader"),
		cadvisor:  filepath.Join(e.keep, "cadvisorreader"),
	}
	jobs := []struct{ dir, out, pkg string }{
		{e.root, e.bins.oomscope, "./cmd/oomscope"},
		{e.root, e.bins.alloc, "./e2e/alloc"},
		{e.bench, e.bins.oomreader, "./cmd/oomreader"},
		{e.bench, e.bins.cadvisor, "./cmd/cadvisorreader"},
	}
	for _, j := range jobs {
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", j.out, j.pkg)
		cmd.Dir = j.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s in %s: %w\n%s", j.pkg, j.dir, err, out)
		}
		e.log.Debug().Str("pkg", j.pkg).Dur("took", time.Since(start)).Msg("built")
	}
	e.log.Info().Str("dir", e.keep).Msg("built oomscope, the allocator and the readers")
	return nil
}

func describeMachine(ctx context.Context) machine {
	var m machine
	m.Date = time.Now().UTC().Format("2006-01-02 15:04 MST")
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		m.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	m.GoVersion = runtime.Version()
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	m.Nproc = fmt.Sprint(runtime.NumCPU())
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		m.Mem = fmt.Sprintf("%.0f GiB", float64(si.Totalram)*float64(si.Unit)/(1<<30))
	}
	m.LoadBefore = loadavg()
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
