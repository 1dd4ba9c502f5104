// Package frame is the line framing the qemu OOM matrix uses to carry data
// from a guest to the host over the serial console.
//
// The console also carries kernel and firmware noise, so every payload line is
// wrapped as
//
//	@@OOMSCOPE <kind> <crc32> <payload>\n
//
// where kind is one byte, crc32 is the IEEE CRC-32 of payload as 8 lower-case
// hex digits, and payload is the rest of the line (it may start with a space
// and never contains '\n'). The host finds the marker anywhere in a console
// line (noise may precede it), drops a trailing '\r' (the tty's ONLCR) and
// rejects frames whose checksum does not match.
package frame

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Marker starts every frame.
const Marker = "@@OOMSCOPE"

// Kind says what a frame carries.
type Kind byte

// Frame kinds.
const (
	// Kmsg is one line exactly as read(2) from /dev/kmsg returned it: the
	// record line "PRIO,SEQ,USEC,FLAGS[,...];TEXT", or a dictionary line
	// (" KEY=VALUE") belonging to the record before it.
	Kmsg Kind = 'K'
	// Event is a reader event such as "lost" (EPIPE) or "eof".
	Event Kind = 'E'
	// Truth is one scenario's ground truth as a single-line JSON object.
	Truth Kind = 'T'
	// Log is human-oriented progress output.
	Log Kind = 'L'
	// Report is one line of `oomscope run --stdout` output (one JSON report)
	// as printed inside the guest.
	Report Kind = 'R'
)

// ErrChecksum means a frame was found but its payload is corrupt.
var ErrChecksum = errors.New("frame: checksum mismatch")

// Append appends the framed form of payload to dst. A '\n' or '\r' in
// payload is replaced by a space so the frame stays one line.
func Append(dst []byte, kind Kind, payload []byte) []byte {
	clean := payload
	copied := false
	for i, c := range payload {
		if c == '\n' || c == '\r' {
			if !copied {
				clean, copied = append([]byte(nil), payload...), true
			}
			clean[i] = ' '
		}
	}
	dst = append(dst, Marker...)
	dst = append(dst, ' ', byte(kind), ' ')
	dst = appendHex8(dst, crc32.ChecksumIEEE(clean))
	dst = append(dst, ' ')
	dst = append(dst, clean...)
	return append(dst, '\n')
}

func appendHex8(dst []byte, v uint32) []byte {
	s := strconv.FormatUint(uint64(v), 16)
	for i := len(s); i < 8; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// Parse extracts a frame from one console line. ok is false when the line
// holds no frame marker. A frame with a bad checksum or shape returns an error
// that wraps ErrChecksum or describes the malformation.
func Parse(line string) (kind Kind, payload string, ok bool, err error) {
	i := strings.Index(line, Marker+" ")
	if i < 0 {
		return 0, "", false, nil
	}
	rest := strings.TrimSuffix(strings.TrimSuffix(line[i+len(Marker)+1:], "\n"), "\r")
	// "<kind> <crc8> <payload>"
	if len(rest) < 11 || rest[1] != ' ' || rest[10] != ' ' {
		return 0, "", true, fmt.Errorf("frame: malformed frame %q", clip(rest))
	}
	want, perr := strconv.ParseUint(rest[2:10], 16, 32)
	if perr != nil {
		return 0, "", true, fmt.Errorf("frame: bad checksum field %q: %w", rest[2:10], perr)
	}
	payload = rest[11:]
	if crc32.ChecksumIEEE([]byte(payload)) != uint32(want) {
		return 0, "", true, fmt.Errorf("%w: %q", ErrChecksum, clip(rest))
	}
	return Kind(rest[0]), payload, true, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
