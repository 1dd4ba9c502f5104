package kmsg

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestLiveOptions checks what each option sets and which values and
// combinations it refuses, naming the option.
func TestLiveOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []LiveOption
		wantErr string // "" = accepted
		check   func(t *testing.T, c liveConfig)
	}{
		{name: "defaults", check: func(t *testing.T, c liveConfig) {
			if c.device != DefaultDevice || c.start != startEnd || c.startOpt != "" {
				t.Errorf("device %q start %v (%q), want %q, end", c.device, c.start, c.startOpt, DefaultDevice)
			}
		}},
		{name: "nil option skipped", opts: []LiveOption{nil, WithDevice("/x")}, check: func(t *testing.T, c liveConfig) {
			if c.device != "/x" {
				t.Errorf("device %q, want /x", c.device)
			}
		}},
		{name: "device", opts: []LiveOption{WithDevice("/fake/kmsg")}, check: func(t *testing.T, c liveConfig) {
			if c.device != "/fake/kmsg" {
				t.Errorf("device %q", c.device)
			}
		}},
		{name: "empty device", opts: []LiveOption{WithDevice("")}, wantErr: "WithDevice: empty device path"},
		{name: "empty device after a good one", opts: []LiveOption{WithDevice("/x"), WithDevice("")}, wantErr: "WithDevice: empty device path"},
		{name: "logger", opts: []LiveOption{WithLogger(zerolog.New(nil).Level(zerolog.WarnLevel))}, check: func(t *testing.T, c liveConfig) {
			if c.log.GetLevel() != zerolog.WarnLevel {
				t.Errorf("logger level %v", c.log.GetLevel())
			}
		}},
		{name: "start at end", opts: []LiveOption{WithStartAtEnd()}, check: func(t *testing.T, c liveConfig) {
			if c.start != startEnd {
				t.Errorf("start %v", c.start)
			}
		}},
		{name: "start at beginning", opts: []LiveOption{WithStartAtBeginning()}, check: func(t *testing.T, c liveConfig) {
			if c.start != startBeginning {
				t.Errorf("start %v", c.start)
			}
		}},
		{name: "resume after", opts: []LiveOption{WithResumeAfter(7)}, check: func(t *testing.T, c liveConfig) {
			if c.start != startAfter || c.after != 7 {
				t.Errorf("start %v after %d", c.start, c.after)
			}
		}},
		{name: "resume after 0", opts: []LiveOption{WithResumeAfter(0)}, check: func(t *testing.T, c liveConfig) {
			if c.start != startAfter || c.after != 0 {
				t.Errorf("start %v after %d", c.start, c.after)
			}
		}},
		{name: "same start option twice", opts: []LiveOption{WithStartAtBeginning(), WithStartAtBeginning()}, check: func(t *testing.T, c liveConfig) {
			if c.start != startBeginning {
				t.Errorf("start %v", c.start)
			}
		}},
		{name: "same resume point twice", opts: []LiveOption{WithResumeAfter(7), WithResumeAfter(7)}, check: func(t *testing.T, c liveConfig) {
			if c.start != startAfter || c.after != 7 {
				t.Errorf("start %v after %d", c.start, c.after)
			}
		}},
		{name: "beginning then end", opts: []LiveOption{WithStartAtBeginning(), WithStartAtEnd()},
			wantErr: "WithStartAtEnd(): conflicts with WithStartAtBeginning() given before"},
		{name: "resume then beginning", opts: []LiveOption{WithResumeAfter(7), WithStartAtBeginning()},
			wantErr: "WithStartAtBeginning(): conflicts with WithResumeAfter(7) given before"},
		{name: "end then resume", opts: []LiveOption{WithStartAtEnd(), WithResumeAfter(7)},
			wantErr: "WithResumeAfter(7): conflicts with WithStartAtEnd() given before"},
		{name: "two resume points", opts: []LiveOption{WithResumeAfter(7), WithResumeAfter(8)},
			wantErr: "WithResumeAfter(8): conflicts with WithResumeAfter(7) given before"},
		{name: "nil opener", opts: []LiveOption{withOpener(nil)}, wantErr: "withOpener: nil opener"},
		{name: "nil clock", opts: []LiveOption{withClock(nil)}, wantErr: "withClock: nil clock"},
		{name: "nil newest", opts: []LiveOption{withNewest(nil)}, wantErr: "withNewest: nil function"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := newLiveConfig(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			tc.check(t, cfg)
		})
	}
}

// TestOpenLiveRefusesBadOptions checks that OpenLive fails on a bad option
// with an error naming it, before opening the device.
func TestOpenLiveRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []LiveOption
		wantErr string
	}{
		{"empty device", []LiveOption{WithDevice("")}, "kmsg: OpenLive: option WithDevice: empty device path"},
		{"conflicting starts", []LiveOption{WithResumeAfter(3), WithStartAtEnd()},
			"kmsg: OpenLive: option WithStartAtEnd(): conflicts with WithResumeAfter(3) given before: give one start option"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opened := false
			opts := append([]LiveOption{
				withOpener(func(string) (device, error) { opened = true; return newFakeDevice(), nil }),
				withClock(fixedClock(time.Hour)),
				withNewest(func(string) (uint64, bool, error) { return 15, true, nil }),
			}, tc.opts...)
			l, err := OpenLive(context.Background(), opts...)
			if err == nil {
				l.Close()
				t.Fatalf("OpenLive accepted %s", tc.name)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("err = %q, want %q", err, tc.wantErr)
			}
			if opened {
				t.Error("the device was opened before the options were checked")
			}
		})
	}
}

// TestKernelClock checks that KernelClock reads a clock that advances
// with time (CLOCK_MONOTONIC through unix.ClockGettime).
func TestKernelClock(t *testing.T) {
	a, err := KernelClock()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	b, err := KernelClock()
	if err != nil {
		t.Fatal(err)
	}
	if d := b - a; d < 2*time.Millisecond || d > 10*time.Second {
		t.Errorf("KernelClock advanced %v over a 2ms sleep", d)
	}
	if a <= 0 {
		t.Errorf("KernelClock = %v, want time since boot", a)
	}
}
