//go:build linux

// Command kmsgdump is the guest-side /dev/kmsg reader of the qemu OOM matrix.
//
// It opens /dev/kmsg non-blocking, so reading starts at the oldest record
// still in the ring buffer, and issues one read(2) with an 8 KiB buffer per
// record (the kernel returns exactly one record per read). Every line of every
// record is written verbatim, escapes intact, as a frame (see package frame)
// of kind 'K' on stdout (in the guest a pipe that the scenario runner relays
// to the frame port):
//
//	@@OOMSCOPE K 1c291ca3 6,433,5239394,-;Memory cgroup out of memory: Killed process 85 (dd) ...
//
// Dictionary lines (" SUBSYSTEM=...") that follow a record line in the same
// read are framed as their own 'K' frames, leading space kept.
// EPIPE (records overwritten before they were read) is reported as an 'E'
// frame "lost" and reading continues with the next available record.
//
// Flags:
//
//	-until TEXT   exit after printing the record whose text is exactly TEXT
//	              (default "oomscope-e2e: done")
//	-once         exit at the first EAGAIN (dump what is there now)
//	-poll D       sleep between polls when no record is pending (default 10ms)
//
// SIGTERM and SIGINT make it drain the buffer up to EAGAIN and exit.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oomscope/oomscope/e2e/qemu/internal/frame"
)

// bufSize is the read(2) size; /dev/kmsg returns EINVAL when a record does
// not fit, and 8 KiB holds the longest record the kernel can store.
const bufSize = 8192

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kmsgdump:", err)
		os.Exit(1)
	}
}

func run() error {
	until := flag.String("until", "oomscope-e2e: done", "exit after the record with this exact text")
	once := flag.Bool("once", false, "exit at the first EAGAIN")
	poll := flag.Duration("poll", 10*time.Millisecond, "idle poll interval")
	flag.Parse()

	var stop atomic.Bool
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		stop.Store(true)
	}()

	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/kmsg: %w", err)
	}
	defer syscall.Close(fd)

	out := bufio.NewWriterSize(os.Stdout, 256<<10)
	defer out.Flush()
	buf := make([]byte, bufSize)
	var fb []byte
	var lost int
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case err == nil && n > 0:
		case errors.Is(err, syscall.EAGAIN):
			// Flush as one write(2) per batch: a single tty write is not
			// interleaved with other writers.
			if err := out.Flush(); err != nil {
				return err
			}
			if *once || stop.Load() {
				return nil
			}
			time.Sleep(*poll)
			continue
		case errors.Is(err, syscall.EPIPE):
			lost++
			fb = frame.Append(fb[:0], frame.Event, []byte("lost "+strconv.Itoa(lost)))
			if _, err := out.Write(fb); err != nil {
				return err
			}
			continue
		case errors.Is(err, syscall.EINTR):
			continue
		case err == nil:
			return errors.New("read /dev/kmsg: unexpected EOF")
		default:
			return fmt.Errorf("read /dev/kmsg: %w", err)
		}
		rec := buf[:n]
		done := false
		for len(rec) > 0 {
			line := rec
			if i := bytes.IndexByte(rec, '\n'); i >= 0 {
				line, rec = rec[:i], rec[i+1:]
			} else {
				rec = nil
			}
			fb = frame.Append(fb[:0], frame.Kmsg, line)
			// Never let bufio split a frame over two write(2)s: another
			// writer's frame could land between them.
			if out.Available() < len(fb) {
				if err := out.Flush(); err != nil {
					return err
				}
			}
			if _, err := out.Write(fb); err != nil {
				return err
			}
			if *until != "" && line[0] != ' ' {
				if _, text, ok := bytes.Cut(line, []byte{';'}); ok && string(text) == *until {
					done = true
				}
			}
		}
		if done {
			return out.Flush()
		}
	}
}
