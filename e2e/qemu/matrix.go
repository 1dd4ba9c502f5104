package qemu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/e2e/qemu/internal/truth"
	"github.com/oomscope/oomscope/report"
)

// Scenarios are the guest's scenario names in run order (see
// e2e/qemu/guest/scenarios); every one is a column of the matrix.
var Scenarios = truth.ScenarioNames

// KernelSpec names one kernel of the matrix.
type KernelSpec struct {
	// Name is the cache directory name and the matrix row ("debian-6.1").
	Name string
	// Suite is the Debian suite hack/kernels.sh fetches it from.
	Suite string
}

// Kernels are Debian's kernels the matrix boots.
var Kernels = []KernelSpec{
	{Name: "debian-5.10", Suite: "bullseye"},
	{Name: "debian-6.1", Suite: "bookworm"},
	{Name: "debian-6.12", Suite: "trixie"},
}

// Config configures a matrix run.
type Config struct {
	// Repo is the repository root (hack/ scripts, testdata/).
	Repo string
	// Cache is the kernel cache (hack/kernels.sh's OOMSCOPE_KERNEL_CACHE).
	Cache string
	// Work is where the initramfs and per-boot logs go.
	Work string
	// Kernels to boot; default [Kernels].
	Kernels []KernelSpec
	// Scenarios to run; default all (the guest's default order).
	Scenarios []string
	// MemoryMiB is the VM's RAM (default 256).
	MemoryMiB int
	// BootTimeout bounds one boot (default 8 minutes).
	BootTimeout time.Duration
	// CaptureDir, when set, receives each scenario's raw records as
	// <kernel>-<scenario>.kmsg golden inputs.
	CaptureDir string
	// Log receives progress.
	Log zerolog.Logger
}

// Matrix is the outcome of a run.
type Matrix struct {
	Kernels   []string
	Scenarios []string
	Results   map[string]map[string]Result // kernel → scenario → result
	// Source says where the checked reports came from.
	Source map[string]string // kernel → "oomscope run (guest)" | "oomparse (host)"
}

// Failed reports whether any cell failed.
func (m *Matrix) Failed() bool {
	for _, row := range m.Results {
		for _, r := range row {
			if r.Outcome == Fail {
				return true
			}
		}
	}
	return false
}

// Run boots every kernel (sequentially, -smp 1; one boot for the cgroup v2
// and global scenarios, one for cgroup v1) and checks every scenario.
func Run(ctx context.Context, cfg Config) (*Matrix, error) {
	if len(cfg.Kernels) == 0 {
		cfg.Kernels = Kernels
	}
	if len(cfg.Scenarios) == 0 {
		cfg.Scenarios = Scenarios
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 256
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 8 * time.Minute
	}
	m := &Matrix{Scenarios: cfg.Scenarios, Results: map[string]map[string]Result{}, Source: map[string]string{}}
	if err := os.MkdirAll(cfg.Work, 0o755); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	initrd := filepath.Join(cfg.Work, "initramfs.cpio.gz")
	cfg.Log.Info().Str("initramfs", initrd).Msg("building the initramfs")
	out, err := runCmd(ctx, cfg.Repo, nil, filepath.Join(cfg.Repo, "hack/initramfs.sh"), initrd)
	if err != nil {
		return nil, fmt.Errorf("hack/initramfs.sh: %w\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		cfg.Log.Info().Msg(line)
	}
	for _, k := range cfg.Kernels {
		m.Kernels = append(m.Kernels, k.Name)
		row := map[string]Result{}
		m.Results[k.Name] = row
		failAll := func(reason string) {
			for _, s := range cfg.Scenarios {
				row[s] = Result{Kernel: k.Name, Scenario: s, Outcome: Fail, Reasons: []string{reason}}
			}
		}
		cfg.Log.Info().Str("kernel", k.Name).Str("suite", k.Suite).Msg("fetching kernel")
		env := []string{"OOMSCOPE_KERNEL_CACHE=" + cfg.Cache}
		if out, err := runCmd(ctx, cfg.Repo, env, filepath.Join(cfg.Repo, "hack/kernels.sh"), k.Suite); err != nil {
			failAll(fmt.Sprintf("kernel %s (%s) could not be fetched: %v: %s", k.Name, k.Suite, err, lastLines(out, 3)))
			continue
		}
		dir := filepath.Join(cfg.Cache, k.Name)
		config, _ := os.ReadFile(filepath.Join(dir, "config"))
		noV1 := bytes.Contains(config, []byte("# CONFIG_MEMCG_V1 is not set"))
		for _, group := range bootGroups(cfg.Scenarios) {
			if noV1 && strings.HasPrefix(group[0], "v1-") {
				for _, name := range group {
					row[name] = Result{Kernel: k.Name, Scenario: name, Outcome: NA,
						Reasons: []string{"kernel config: CONFIG_MEMCG_V1 is not set (no cgroup v1 memory controller)"}}
				}
				continue
			}
			logDir := filepath.Join(cfg.Work, k.Name, strings.Join(group, "+"))
			if len(group) > 2 {
				logDir = filepath.Join(cfg.Work, k.Name, "main")
			}
			start := time.Now()
			boot, err := bootKernel(ctx, cfg, filepath.Join(dir, "vmlinuz"), initrd, logDir, group)
			if err != nil && boot != nil && len(boot.Logs) == 0 && ctx.Err() == nil {
				// The kernel died before userspace started: boot once more.
				cfg.Log.Warn().Str("kernel", k.Name).Err(err).Msg("guest died before its runner started, booting again")
				boot, err = bootKernel(ctx, cfg, filepath.Join(dir, "vmlinuz"), initrd, logDir, group)
			}
			cfg.Log.Info().Str("kernel", k.Name).Strs("scenarios", group).Dur("took", time.Since(start).Round(time.Second)).Err(err).Msg("boot finished")
			if err != nil {
				for _, name := range group {
					row[name] = Result{Kernel: k.Name, Scenario: name, Outcome: Fail,
						Reasons: []string{fmt.Sprintf("kernel %s: boot: %v (logs in %s)", k.Name, err, logDir)}}
				}
				continue
			}
			if boot.BadFrames > 0 {
				cfg.Log.Warn().Str("kernel", k.Name).Int("bad_frames", boot.BadFrames).Msg("frames with bad checksums were dropped")
			}
			src := "oomparse on the host (raw kmsg frames)"
			if len(boot.Reports) > 0 {
				src = "oomscope run --stdout in the guest"
			}
			if m.Source[k.Name] != "" && m.Source[k.Name] != src {
				src = m.Source[k.Name] + " / " + src
			}
			m.Source[k.Name] = src
			segs := map[string]Segment{}
			for _, s := range boot.Segments() {
				segs[s.Truth.Scenario] = s
			}
			for _, name := range group {
				seg, ok := segs[name]
				if !ok {
					row[name] = Result{Kernel: k.Name, Scenario: name, Outcome: Fail,
						Reasons: []string{fmt.Sprintf("guest printed no result for %s (boot done marker seen: %v; logs in %s)", name, boot.Done, logDir)}}
					continue
				}
				res := checkSegment(k.Name, boot, seg, config)
				if res.Outcome == Fail && boot.BadFrames > 0 {
					res.Reasons = append(res.Reasons, fmt.Sprintf("note: %d frame(s) of this boot were corrupt on the serial port and dropped (logs in %s)", boot.BadFrames, logDir))
				}
				row[name] = res
				if cfg.CaptureDir != "" && seg.Truth.Status == "ok" && len(seg.Lines) > 0 {
					p := filepath.Join(cfg.CaptureDir, k.Name+"-"+name+".kmsg")
					if err := os.WriteFile(p, seg.Capture(), 0o644); err != nil {
						return m, fmt.Errorf("save capture: %w", err)
					}
				}
			}
		}
	}
	return m, nil
}

// bootGroups splits the scenarios into boots: the cgroup v1 scenarios need a
// boot of their own (the memory controller binds to one hierarchy per boot,
// see the guest's allScenarios), everything else shares one.
func bootGroups(scenarios []string) [][]string {
	var v1, v2 []string
	for _, s := range scenarios {
		if strings.HasPrefix(s, "v1-") {
			v1 = append(v1, s)
		} else {
			v2 = append(v2, s)
		}
	}
	var out [][]string
	for _, g := range [][]string{v2, v1} {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// checkSegment checks one scenario, with the guest's reports when oomscope
// ran there (and then also cross-checks them against the host's parse).
func checkSegment(kernel string, boot *Boot, seg Segment, config []byte) Result {
	if seg.Truth.Status == "unsupported" && seg.Truth.CgroupMode == "v1" && !bytes.Contains(config, []byte("# CONFIG_MEMCG_V1 is not set")) {
		return Result{Kernel: kernel, Scenario: seg.Truth.Scenario, Outcome: Fail,
			Reasons: []string{"guest could not use cgroup v1 memory, but the kernel config does not disable it: " + seg.Truth.Error}}
	}
	if seg.Truth.Status == "unsupported" {
		seg.Truth.Error = "kernel built without cgroup v1 memory (CONFIG_MEMCG_V1 not set): " + seg.Truth.Error
	}
	host, err := ParseSegment(seg)
	if err != nil {
		return Result{Kernel: kernel, Scenario: seg.Truth.Scenario, Outcome: Fail, Reasons: []string{err.Error()}}
	}
	if len(boot.Reports) == 0 {
		res := Check(kernel, seg, host)
		if why := guestOomscopeSilent(boot); why != "" && seg.Truth.Status == "ok" {
			// oomscope ran in the guest and printed no report: a failure
			// of oomscope run, not a reason to fall back to the host.
			res.Outcome = Fail
			res.Reasons = append(res.Reasons, why)
		}
		return res
	}
	guest, err := boot.GuestReports(seg)
	if err != nil {
		return Result{Kernel: kernel, Scenario: seg.Truth.Scenario, Outcome: Fail, Reasons: []string{err.Error()}}
	}
	res := Check(kernel, seg, guest)
	attr, err := boot.GuestAttributions(seg)
	if err != nil {
		return Result{Kernel: kernel, Scenario: seg.Truth.Scenario, Outcome: Fail, Reasons: []string{err.Error()}}
	}
	CheckAttribution(&res, seg, attr)
	if g, h := victimList(guest), victimList(host); g != h && seg.Truth.Status == "ok" {
		res.Reasons = append(res.Reasons, fmt.Sprintf("oomscope run in the guest and oomparse on the host disagree: guest reports %s, host %s", g, h))
		res.Outcome = Fail
	}
	return res
}

func victimList(rs []report.Report) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprint(victimPids(r)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// bootKernel boots one kernel with the initramfs and reads the frame port.
func bootKernel(ctx context.Context, cfg Config, vmlinuz, initrd, logDir string, scenarios []string) (*Boot, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	console := filepath.Join(logDir, "console.log")
	frames := filepath.Join(logDir, "frames.log")
	for _, p := range []string{console, frames} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove old log: %w", err)
		}
	}
	// no_timer_check: under TCG on a busy host the kernel's IO-APIC timer
	// check can fail and panic ("IO-APIC + timer doesn't work!", seen on
	// 5.10).
	appendArgs := "console=ttyS0 panic=-1 quiet no_timer_check oomscope.out=/dev/ttyS1 oomscope.scenarios=" + strings.Join(scenarios, ",")
	ctx, cancel := context.WithTimeout(ctx, cfg.BootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64",
		"-accel", "tcg", "-m", fmt.Sprint(cfg.MemoryMiB), "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-kernel", vmlinuz, "-initrd", initrd, "-append", appendArgs,
		"-serial", "file:"+console, "-serial", "file:"+frames)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("qemu did not power off within %s: %s", cfg.BootTimeout, lastLines(readTail(console), 5))
	}
	if err != nil {
		return nil, fmt.Errorf("qemu: %w: %s", err, strings.TrimSpace(string(out)))
	}
	f, err := os.Open(frames)
	if err != nil {
		return nil, fmt.Errorf("open frame log: %w", err)
	}
	defer f.Close()
	b, err := ReadBoot(f)
	if err != nil {
		return nil, err
	}
	if !b.RunnerDone {
		return b, fmt.Errorf("guest runner never finished; console tail: %s", lastLines(readTail(console), 5))
	}
	return b, nil
}

func runCmd(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 8192 {
		b = b[len(b)-8192:]
	}
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// maxReasons caps the reasons printed per cell.
const maxReasons = 12

// WriteTable prints the matrix: one row per kernel, one column per
// scenario, then every failure's reasons.
func (m *Matrix) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	width := 12
	for _, k := range m.Kernels {
		width = max(width, len(k)+2)
	}
	fmt.Fprintf(bw, "%-*s", width, "kernel")
	for _, s := range m.Scenarios {
		fmt.Fprintf(bw, " %-*s", len(s), s)
	}
	fmt.Fprintln(bw)
	for _, k := range m.Kernels {
		fmt.Fprintf(bw, "%-*s", width, k)
		for _, s := range m.Scenarios {
			fmt.Fprintf(bw, " %-*s", len(s), m.Results[k][s].Outcome)
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw)
	for _, k := range m.Kernels {
		if src := m.Source[k]; src != "" {
			fmt.Fprintf(bw, "%s: reports from %s\n", k, src)
		}
		for _, s := range m.Scenarios {
			r := m.Results[k][s]
			switch r.Outcome {
			case Pass:
				fmt.Fprintf(bw, "  %-16s pass: %s\n", s, r.Summary)
			default:
				fmt.Fprintf(bw, "  %-16s %s:\n", s, r.Outcome)
				for i, why := range r.Reasons {
					if i == maxReasons {
						fmt.Fprintf(bw, "      ... and %d more\n", len(r.Reasons)-i)
						break
					}
					fmt.Fprintf(bw, "      - %s\n", why)
				}
			}
		}
	}
	return bw.Flush()
}

// guestOomscopeSilent says why, when the guest started oomscope run and it
// printed no report at all; "" when oomscope was not in the initramfs.
func guestOomscopeSilent(b *Boot) string {
	started := false
	var last []string
	for _, l := range b.Logs {
		if strings.HasPrefix(l, "runner: started oomscope") {
			started = true
		}
		if strings.HasPrefix(l, "oomscope: ") && !strings.Contains(l, "nats-server") {
			last = append(last, l)
			if len(last) > 3 {
				last = last[1:]
			}
		}
	}
	if !started {
		return ""
	}
	return "oomscope run started in the guest but printed no report; its last log lines: " + strings.Join(last, " | ")
}
