// Package kmsg reads kernel log records: live from /dev/kmsg, or from the
// text files a post-mortem starts from (raw /dev/kmsg dumps, dmesg, dmesg -T,
// syslog / kern.log, journalctl -k in its text and JSON forms).
//
// Every source yields [Record] values. A record is one kernel printk: its
// sequence number, syslog priority, the kernel's own timestamp (time since
// boot, microseconds), a wall-clock time when one is known, and its text with
// the kernel's \xNN escapes decoded. A record may hold several lines: on
// kernels 5.3–6.4 the memory cgroup statistics of an OOM report arrive as ONE
// record whose text contains "\x0a".
//
// The /dev/kmsg wire format (Documentation/ABI/testing/dev-kmsg):
//
//	6,372,76086772,-;Memory cgroup stats for /kubepods.slice/pod1:
//	^ ^   ^        ^ ^
//	| |   |        | text, non-printable bytes and '\' escaped as \xNN
//	| |   |        flags: '-' ordinary, 'c' continuation ('+' on 3.x), then optional ",caller=T123"
//	| |   timestamp, microseconds since boot (local_clock)
//	| sequence number, strictly increasing: a gap means records were lost
//	(facility<<3)|level
//
// followed by optional dictionary lines that start with a space
// (" SUBSYSTEM=...", " DEVICE=..."), which are kept apart in [Record.Dict].
//
// Package kmsg knows nothing about OOM reports; see package oomparse.
package kmsg
