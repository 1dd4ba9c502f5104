package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// releaseExecutablePages unmaps from this process the pages of its own
// executable that are mapped read-only — the code and the read-only data
// (type data, the pc tables) — with madvise(MADV_DONTNEED), and returns how
// many bytes of mappings it advised. The pages stay in the page cache: the
// next use of one maps it again with a minor fault, and the kernel maps its
// neighbours with it (fault-around). What it removes from the resident set
// is what only start-up used: the package initialisation of client-go's API
// types, the NATS server and the rest touches about 25 MiB of the 60 MiB
// binary, which the daemon never runs again. Writable mappings are never
// touched (MADV_DONTNEED would zero their private pages).
func releaseExecutablePages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("releasing start-up pages: %w", err)
	}
	// smaps, not maps: a mapping is only released when none of its pages
	// is anonymous (copied on write). A position-independent build's RELRO segment
	// is read-only too, but holds pages the loader relocated: dropping
	// them would map the unrelocated file pages back (measured: a
	// -buildmode=pie oomscope died with SIGSEGV at start-up).
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("releasing start-up pages: %w", err)
	}
	type mapping struct{ start, end uint64 }
	var (
		advised int64
		cur     *mapping
		dirty   bool
		todo    []mapping
	)
	flush := func() {
		if cur != nil && !dirty {
			todo = append(todo, *cur)
		}
		cur, dirty = nil, false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Bytes()
		f := bytes.Fields(line)
		if len(f) > 0 && bytes.HasSuffix(f[0], []byte(":")) {
			// "Anonymous:  0 kB": pages copied on write (not
			// Private_Dirty, which also counts a file's dirty page
			// cache, e.g. a binary just written)
			if cur != nil && len(f) >= 2 && string(f[0]) == "Anonymous:" && string(f[1]) != "0" {
				dirty = true
			}
			continue
		}
		// A mapping's header: start-end perms offset dev inode path.
		flush()
		if len(f) < 6 || string(f[5]) != exe {
			continue
		}
		if p := string(f[1]); p != "r-xp" && p != "r--p" {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte{'-'})
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		cur = &mapping{start, end}
	}
	flush()
	for _, m := range todo {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED); errno != 0 {
			return advised, fmt.Errorf("releasing start-up pages: madvise %x-%x: %w", m.start, m.end, errno)
		}
		advised += int64(m.end - m.start)
	}
	return advised, nil
}
