// Package archive is the node's post-mortem archive of OOM-kill reports:
// one durable file per report, raw kernel lines included, an index that
// answers "what was killed here lately" in milliseconds with 100,000
// reports, and retention by age and size.
//
// # Layout
//
// Under the archive's root directory:
//
//	<boot id>/<seq>.json       a report read from the kernel log (id "<boot id>/<seq>")
//	files/sha256-<hex>.json    any other report (id "sha256:<hex>")
//	index.jsonl                one JSON line per report (see [Entry])
//	.writer.lock               flock'ed by the one process writing the archive
//
// A report's path depends on its id alone ([RelPath]): the same report is
// never stored twice, and no id names a path outside the archive.
//
// # Writing and crashes
//
// One process writes an archive ([OpenWriter], used by the daemon's
// archive sink). [Writer.Put] writes the report to a temporary file in the
// same directory (named ".oomscope-tmp-…"), fsyncs it, renames it into
// place, fsyncs the directory, and only then appends the report's index
// line with O_APPEND and fsyncs the index. A crash can therefore leave a
// temporary file, a report without its index line, or a cut last line —
// never a half-written report. The next OpenWriter removes the temporary
// files (only names of its own pattern), indexes reports that lack a line,
// drops lines of files that are gone, and rewrites a damaged index.
//
// # Reading while the daemon writes
//
// [Open] needs no lock and no write access: it reads the index and, in the
// report directories modified after the index (a rename changes the
// directory's mtime before the index append changes the index's), looks
// for reports without an index line — written a moment ago, or just before
// a crash. So a reader sees every report whose Put has returned, and never
// blocks the writer. When the index is missing or damaged and no writer
// holds the archive, Open rebuilds it on disk. [Reindex] rebuilds it from
// the report files alone.
//
// # Retention
//
// [Config.MaxAge] and [Config.MaxBytes] bound the archive (0 disables
// either; [DefaultConfig] sets 30 days and 1 GiB). The writer enforces them
// when it opens and after writes when due — at once when the archive
// outgrows MaxBytes (it then removes the oldest reports until it is below
// 90% of it), at most hourly for age — removing the oldest reports first:
// their index lines (the index is rewritten without them), then their
// files. Each removal is logged at info with the report id and counted in
// oomscope_archive_reports_removed_total{reason}.
//
// # Untrusted text
//
// Process names, pod names, node names and cgroup paths are chosen by
// whoever runs the workload. Index fields are escaped with [Escape] (no
// control character, bidi override or line break survives as such) and
// bounded; report files keep the exact text, as JSON.
package archive
