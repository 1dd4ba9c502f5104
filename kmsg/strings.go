package kmsg

import "unsafe"

// stringBlockSize is the size of the blocks a [blockStrings] carves
// strings from.
const stringBlockSize = 16 << 10

// blockStrings makes strings from byte slices without an allocation per
// string: short ones are copied into an append-only block of
// stringBlockSize bytes, shared by the strings that follow until it is
// full, and the string points into it. Bytes are never written again once
// a string refers to them, so the strings are as immutable as any other.
// The cost is one allocation per block instead of one per string; a
// string kept after the others are gone keeps its block (at most
// stringBlockSize bytes) alive. The zero value is ready to use; it is not
// safe for concurrent use.
type blockStrings struct {
	block []byte
}

// str returns b as a string.
func (bs *blockStrings) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > stringBlockSize/4 {
		return string(b)
	}
	if cap(bs.block)-len(bs.block) < len(b) {
		bs.block = make([]byte, 0, stringBlockSize)
	}
	start := len(bs.block)
	bs.block = append(bs.block, b...)
	return unsafe.String(&bs.block[start], len(b))
}
