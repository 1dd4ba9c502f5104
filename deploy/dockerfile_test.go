package deploy

import (
	"bufio"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// No docker engine runs where the tests run, so the Dockerfile is checked
// statically, and its `go build` line is run as it stands to make the
// binary the container test runs.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// parseDockerfile reads instructions (not a full parser: no heredocs or
// escape directive, which deploy/Dockerfile does not use).
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start, n := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: a continuation line at the end", path)
	}
	return out
}

// shellWords splits a command line as sh does for the quoting the
// Dockerfile uses: single and double quotes, no expansions.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case strings.ContainsRune("$`;&|<>()\\*?", r):
			return nil, fmt.Errorf("shell syntax %q in %q: keep the go build line plain", r, s)
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

// dockerBuild is what the Dockerfile's build stage runs.
type dockerBuild struct {
	env  []string // ENV of the build stage
	args []string // go build ..., -o's value included
	out  string   // the -o path in the image
}

func buildStage(t *testing.T, ins []instruction) dockerBuild {
	t.Helper()
	var b dockerBuild
	stage := 0
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			stage++
		case "ENV":
			if stage == 1 {
				for _, kv := range strings.Fields(in.args) {
					if !strings.Contains(kv, "=") {
						t.Fatalf("Dockerfile:%d: ENV %q: use the KEY=value form", in.line, in.args)
					}
					b.env = append(b.env, kv)
				}
			}
		case "RUN":
			if stage != 1 || !strings.Contains(in.args, "go build") {
				continue
			}
			words, err := shellWords(in.args)
			if err != nil {
				t.Fatalf("Dockerfile:%d: %v", in.line, err)
			}
			for len(words) > 0 && strings.HasPrefix(words[0], "--mount=") {
				words = words[1:]
			}
			if len(words) < 2 || words[0] != "go" || words[1] != "build" {
				t.Fatalf("Dockerfile:%d: RUN %q is not a plain go build", in.line, in.args)
			}
			b.args = words
			if i := slices.Index(words, "-o"); i > 0 && i+1 < len(words) {
				b.out = words[i+1]
			}
		}
	}
	if b.args == nil {
		t.Fatal("Dockerfile: no RUN go build in the first stage")
	}
	return b
}

// TestDockerfile checks deploy/Dockerfile statically: a golang build stage
// of go.mod's Go version, a static (CGO_ENABLED=0) -trimpath build, the
// distroless static base, the binary copied from the build stage,
// ENTRYPOINT oomscope run in exec form, no remote ADD; and that its
// `go build` line builds a static binary here.
func TestDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds oomscope: not in -short mode")
	}
	ins := parseDockerfile(t, "Dockerfile")
	var froms []instruction
	args := map[string]string{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in)
		case "ARG":
			if k, v, ok := strings.Cut(in.args, "="); ok {
				args[k] = v
			}
		case "ADD":
			t.Errorf("Dockerfile:%d: ADD (use COPY; no remote sources)", in.line)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("Dockerfile has %d stages, want 2 (build, run)", len(froms))
	}
	build := strings.Fields(froms[0].args)
	if len(build) != 3 || !strings.HasPrefix(build[0], "golang:") || !strings.EqualFold(build[1], "AS") {
		t.Errorf("build stage FROM %q, want golang:... AS name", froms[0].args)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goLine == nil {
		t.Fatal("no go line in go.mod")
	}
	if img := strings.ReplaceAll(build[0], "${GO_VERSION}", args["GO_VERSION"]); !strings.HasPrefix(img, "golang:"+string(goLine[1])) {
		t.Errorf("build image %s is not Go %s (go.mod)", img, goLine[1])
	}
	stageName := ""
	if len(build) == 3 {
		stageName = build[2]
	}
	if froms[1].args != "gcr.io/distroless/static-debian12" && !strings.HasPrefix(froms[1].args, "gcr.io/distroless/static-debian12@sha256:") {
		t.Errorf("run stage FROM %q, want gcr.io/distroless/static-debian12", froms[1].args)
	}
	var copyFrom, entry, user string
	stage := 0
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			stage++
		case stage == 2 && in.cmd == "COPY":
			copyFrom = in.args
		case stage == 2 && in.cmd == "ENTRYPOINT":
			entry = in.args
		case stage == 2 && in.cmd == "USER":
			user = in.args
		case stage == 2 && in.cmd == "RUN":
			t.Errorf("Dockerfile:%d: RUN in the distroless stage (it has no shell)", in.line)
		}
	}
	b := buildStage(t, ins)
	if want := fmt.Sprintf("--from=%s %s /oomscope", stageName, b.out); copyFrom != want {
		t.Errorf("run stage COPY %q, want %q", copyFrom, want)
	}
	if entry != `["/oomscope", "run"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/oomscope\", \"run\"] (exec form: no shell in distroless)", entry)
	}
	if user != "0:0" {
		t.Errorf("USER %q, want 0:0 (docs/deploy.md, Why uid 0)", user)
	}
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("build stage ENV %q lacks CGO_ENABLED=0 (a static binary for distroless static)", b.env)
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("go build %q lacks -trimpath", b.args)
	}
	if b.args[len(b.args)-1] != "./cmd/oomscope" {
		t.Errorf("go build %q does not build ./cmd/oomscope", b.args)
	}

	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git", ".cache", "bin"} {
		if !slices.Contains(strings.Fields(string(ignore)), p) {
			t.Errorf("Dockerfile.dockerignore does not leave %s out of the build context", p)
		}
	}

	bin := oomscopeBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not static", bin, p.Type)
		}
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], want)
		}
	}
}

var (
	oomscopeOnce sync.Once
	oomscopeBin  string
	oomscopeErr  error
)

// oomscopeBinary builds oomscope with the Dockerfile's go build line and
// build-stage environment, from the repository root as the Dockerfile's
// WORKDIR holds it, once per test run.
func oomscopeBinary(t *testing.T) string {
	t.Helper()
	oomscopeOnce.Do(func() {
		b := buildStage(t, parseDockerfile(t, "Dockerfile"))
		out := filepath.Join(toolDir, "oomscope")
		args := slices.Clone(b.args)
		i := slices.Index(args, "-o")
		if i < 0 || i+1 >= len(args) {
			oomscopeErr = fmt.Errorf("go build %q has no -o", args)
			return
		}
		args[i+1] = out
		start := time.Now()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), b.env...)
		if o, err := cmd.CombinedOutput(); err != nil {
			oomscopeErr = fmt.Errorf("the Dockerfile's %q: %v\n%s", args, err, o)
			return
		}
		oomscopeBin = out
		t.Logf("built oomscope with the Dockerfile's %q in %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	})
	if oomscopeErr != nil {
		t.Fatal(oomscopeErr)
	}
	return oomscopeBin
}
