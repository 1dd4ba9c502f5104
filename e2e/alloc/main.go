// Command alloc is the test allocator used by oomscope's end-to-end tests
// (live kernel and qemu guests). It allocates anonymous memory, touches every
// page so the memory cgroup is charged, and optionally starts children that do
// the same, so that a test knows in advance which pids exist, what they
// allocate and which one the kernel should kill.
//
// It prints one line per process it starts, before allocating:
//
//	ready pid=<pid> role=<parent|child> index=<n> mib=<n>
//
// Flags:
//
//	-mib N          MiB this process allocates (after its children started)
//	-chunk-mib N    allocation step (default 1)
//	-children K     start K children (re-executions of this binary)
//	-child-mib M    MiB each child allocates
//	-hold           after allocating, sleep until killed
//	-delay D        wait D before allocating (children first settle)
//	-wait-children  after allocating, wait for the children instead of exiting
//	-gate           after the ready line, wait for a line on stdin before
//	                starting children (the caller moves the pid into a
//	                cgroup meanwhile, so the children are born in it)
//	-gate-alloc     after starting the children, wait for another line on
//	                stdin before allocating
//
// The main goroutine is locked to the main thread, so the page faults that
// charge the memory (and so an OOM this process invokes) happen in the task
// whose pid is the process id.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func init() {
	// Keep the allocating goroutine on the main thread (tid == pid).
	runtime.LockOSThread()
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "alloc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("alloc", flag.ContinueOnError)
	mib := fs.Int("mib", 0, "MiB to allocate")
	chunk := fs.Int("chunk-mib", 1, "allocation step in MiB")
	children := fs.Int("children", 0, "children to start")
	childMiB := fs.Int("child-mib", 0, "MiB each child allocates")
	hold := fs.Bool("hold", false, "sleep after allocating until killed")
	delay := fs.Duration("delay", 0, "wait before allocating")
	waitChildren := fs.Bool("wait-children", false, "wait for the children after allocating")
	role := fs.String("role", "parent", "internal: parent or child")
	index := fs.Int("index", 0, "internal: child index")
	gate := fs.Bool("gate", false, "wait for a stdin line before starting children")
	gateAlloc := fs.Bool("gate-alloc", false, "wait for a stdin line before allocating")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *chunk < 1 {
		return fmt.Errorf("-chunk-mib must be >= 1, got %d", *chunk)
	}
	fmt.Printf("ready pid=%d role=%s index=%d mib=%d\n", os.Getpid(), *role, *index, *mib)
	in := bufio.NewReader(os.Stdin)
	if *gate {
		if _, err := in.ReadString('\n'); err != nil {
			return fmt.Errorf("gate: %w", err)
		}
	}
	var kids []*exec.Cmd
	for i := 1; i <= *children; i++ {
		cmd := exec.Command("/proc/self/exe", "-role", "child", "-index", strconv.Itoa(i),
			"-mib", strconv.Itoa(*childMiB), "-chunk-mib", strconv.Itoa(*chunk), "-hold")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start child %d: %w", i, err)
		}
		kids = append(kids, cmd)
	}
	if *gateAlloc {
		if _, err := in.ReadString('\n'); err != nil {
			return fmt.Errorf("alloc gate: %w", err)
		}
	}
	time.Sleep(*delay)
	var keep [][]byte
	for done := 0; done < *mib; done += *chunk {
		n := *chunk
		if *mib-done < n {
			n = *mib - done
		}
		b, err := syscall.Mmap(-1, 0, n<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return fmt.Errorf("mmap %d MiB after %d MiB: %w", n, done, err)
		}
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		keep = append(keep, b)
	}
	fmt.Printf("allocated pid=%d mib=%d\n", os.Getpid(), *mib)
	if *waitChildren {
		for _, k := range kids {
			_ = k.Wait()
		}
	}
	if *hold {
		for {
			time.Sleep(time.Hour)
		}
	}
	_ = keep
	return nil
}
