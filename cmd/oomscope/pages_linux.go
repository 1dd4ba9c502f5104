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
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("releasing start-up pages: %w", err)
	}
	var advised int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := bytes.Fields(sc.Bytes())
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
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); errno != 0 {
			return advised, fmt.Errorf("releasing start-up pages: madvise %x-%x: %w", start, end, errno)
		}
		advised += int64(end - start)
	}
	return advised, nil
}
