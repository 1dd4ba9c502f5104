package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oomscope/oomscope/internal/cgscratch"
)

// killer starts allocators (e2e/alloc) in one container cgroup. Each
// allocates more than the cgroup's limit and so is OOM-killed: a kill per
// allocator (when several run at once the kernel picks the largest; the
// others are killed in turn).
type killer struct {
	bin  string
	cg   *cgscratch.Cgroup
	args []string

	mu     sync.Mutex
	pids   map[int]bool
	alive  int
	exited chan struct{} // a token per allocator that exited
	wg     sync.WaitGroup
	// killed counts allocators that died of SIGKILL; others exited
	// otherwise (they should not).
	killed, other int
}

func newKiller(bin string, cg *cgscratch.Cgroup, allocMiB int) *killer {
	return &killer{
		bin: bin, cg: cg,
		args:   []string{"-gate", "-mib", strconv.Itoa(allocMiB), "-chunk-mib", "4"},
		pids:   map[int]bool{},
		exited: make(chan struct{}, 1<<16),
	}
}

// spawn starts one allocator: it prints its ready line and waits at its
// gate; it is moved into the cgroup and released there.
func (k *killer) spawn() error {
	cmd := exec.Command(k.bin, k.args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = nil
	// If the harness dies, so does the allocator (and the next run's
	// cgscratch.RemoveStale removes what is left).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	fail := func(err error) error {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("allocator %d: %w", pid, err)
	}
	ready := make(chan error, 1)
	sc := bufio.NewScanner(stdout)
	go func() {
		if !sc.Scan() {
			ready <- errors.New("no ready line")
			return
		}
		if !strings.HasPrefix(sc.Text(), "ready pid=") {
			ready <- fmt.Errorf("unexpected first line %q", sc.Text())
			return
		}
		ready <- nil
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fail(err)
		}
	case <-time.After(10 * time.Second):
		return fail(errors.New("no ready line after 10s"))
	}
	if err := k.cg.AddProc(pid); err != nil {
		return fail(err)
	}
	k.mu.Lock()
	k.pids[pid] = true
	k.alive++
	k.mu.Unlock()
	if _, err := stdin.Write([]byte("\n")); err != nil {
		return fail(err)
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for sc.Scan() {
		}
		err := cmd.Wait()
		k.mu.Lock()
		k.alive--
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				k.killed++
			} else {
				k.other++
			}
		} else {
			k.other++
		}
		k.mu.Unlock()
		k.exited <- struct{}{}
	}()
	return nil
}

// alive returns the number of allocators still running.
func (k *killer) running() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.alive
}

// waitExit waits until an allocator exits, or d.
func (k *killer) waitExit(ctx context.Context, d time.Duration) bool {
	select {
	case <-k.exited:
		return true
	case <-ctx.Done():
	case <-time.After(d):
	}
	return false
}

// wait waits (bounded) until every allocator exited.
func (k *killer) wait(ctx context.Context, d time.Duration) error {
	done := make(chan struct{})
	go func() { k.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return fmt.Errorf("%d allocators still running after %v", k.running(), d)
	}
}

// spawned returns the pids started so far.
func (k *killer) spawned() map[int]bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := make(map[int]bool, len(k.pids))
	for p := range k.pids {
		m[p] = true
	}
	return m
}

// kernelKills is the kernel's oom_kill counter of the cgroup.
func (k *killer) kernelKills() (uint64, error) {
	c, err := k.cg.Counters()
	return c.OOMKill, err
}

// steady makes n kills, one a second: each second one allocator, which
// dies within milliseconds.
func (k *killer) steady(ctx context.Context, n int) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		if err := k.spawn(); err != nil {
			return err
		}
		k.waitExit(ctx, 5*time.Second)
		if i == n-1 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return k.wait(ctx, 30*time.Second)
}

// storm starts batches of allocators at once, a batch every interval, at
// most alive at a time, until the kernel counted n kills (allocators still
// running are killed in turn) or maxDur passed.
func (k *killer) storm(ctx context.Context, n, batch int, interval time.Duration, alive int, maxDur time.Duration) error {
	deadline := time.Now().Add(maxDur)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	started := 0
	for started < n && time.Now().Before(deadline) {
		var wg sync.WaitGroup
		errs := make([]error, batch)
		for i := 0; i < batch && started < n; i++ {
			for k.running() >= alive && time.Now().Before(deadline) {
				k.waitExit(ctx, 100*time.Millisecond)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			started++
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = k.spawn()
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return k.wait(ctx, 60*time.Second)
}

// summary describes how the allocators ended.
func (k *killer) summary() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := fmt.Sprintf("%d allocators, %d SIGKILLed", len(k.pids), k.killed)
	if k.other > 0 {
		s += fmt.Sprintf(", %d exited otherwise", k.other)
	}
	return s
}
