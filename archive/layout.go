package archive

import (
	"path/filepath"
	"strings"
)

// Names of the archive's own files at its root.
const (
	// IndexFile is the index: one JSON line ([Entry]) per report.
	IndexFile = "index.jsonl"
	// LockFile is locked (flock) by the one process that writes the
	// archive; readers never take it.
	LockFile = ".writer.lock"
	// filesDir holds the reports whose id is not "<boot id>/<seq>".
	filesDir = "files"
)

// RelPath returns where, relative to the archive's root and with "/" as
// separator, the archive keeps the report with this id. A report read from
// the kernel log (id "<boot id>/<seq>") is kept at "<boot id>/<seq>.json",
// one folder per boot; any other (id "sha256:<hex>", from a file) at
// "files/sha256-<hex>.json". The path depends on the id alone, so the same
// report is never stored twice, and no id can name a path outside the
// archive.
func RelPath(id string) string {
	if boot, seq, ok := strings.Cut(id, "/"); ok && isBootID(boot) && isDigits(seq) {
		return boot + "/" + seq + ".json"
	}
	return filesDir + "/" + FileName(id) + ".json"
}

// Path returns the file of the report with this id in the archive at dir.
func Path(dir, id string) string {
	return filepath.Join(dir, filepath.FromSlash(RelPath(id)))
}

// isRelPathOf tells whether rel is RelPath(id), without building it.
func isRelPathOf(rel, id string) bool {
	if boot, seq, ok := strings.Cut(id, "/"); ok && isBootID(boot) && isDigits(seq) {
		return len(rel) == len(id)+len(".json") && strings.HasPrefix(rel, id) && strings.HasSuffix(rel, ".json")
	}
	name, ok := strings.CutPrefix(rel, filesDir+"/")
	if !ok {
		return false
	}
	name, ok = strings.CutSuffix(name, ".json")
	return ok && name == FileName(id)
}

func isBootID(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdefABCDEF-") == ""
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// FileName turns a report id into a safe file name: "/" and ":" become "-",
// anything outside [A-Za-z0-9._-] becomes "_", and so does a leading ".":
// no report file is hidden, so none can be taken for a temporary file.
func FileName(id string) string {
	if id == "" {
		return "no-id"
	}
	if id[0] == '.' {
		id = "_" + id[1:]
	}
	return strings.Map(func(c rune) rune {
		switch {
		case c == '/' || c == ':':
			return '-'
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			return c
		}
		return '_'
	}, id)
}

// isReportDir tells whether a directory name at the archive's root can
// hold reports: a boot id or "files".
func isReportDir(name string) bool {
	return name == filesDir || isBootID(name)
}

// isReportFile tells whether a file name in a report directory can be a
// report: "<something>.json", not hidden (temporary files are hidden).
func isReportFile(name string) bool {
	return strings.HasSuffix(name, ".json") && len(name) > len(".json") && !strings.HasPrefix(name, ".")
}
