package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b.json")
	for _, content := range []string{"one", "two"} {
		if err := WriteFile(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "a"))
	if len(ents) != 1 {
		t.Errorf("files left besides b.json: %v", ents)
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o644)
	if err := WriteFile(filepath.Join(f, "x"), []byte("x")); err == nil {
		t.Error("writing below a regular file succeeded")
	}
}

func TestTempNames(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sha256-00ff.json")
	// What a writer killed between CreateTemp and Rename leaves behind.
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(p)+"-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !IsTemp(filepath.Base(f.Name())) {
		t.Errorf("IsTemp(%q) = false", filepath.Base(f.Name()))
	}
	if !strings.Contains(filepath.Base(f.Name()), "sha256-00ff.json") {
		t.Errorf("temporary name %q does not say which file it was for", f.Name())
	}
	for _, n := range []string{"sha256-00ff.json", ".tmp-123", "oomscope-tmp-x", TempPrefix} {
		if IsTemp(n) {
			t.Errorf("IsTemp(%q) = true", n)
		}
	}
	// Other files, including other programs' temporary files, stay.
	keep := []string{"sha256-00ff.json", ".tmp-foreign", "notes.txt", ".hidden"}
	for _, n := range keep {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	os.Mkdir(filepath.Join(dir, TempPrefix+"dir"), 0o755) // not a regular file: kept
	removed, err := RemoveTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != filepath.Base(f.Name()) {
		t.Errorf("removed %v, want [%s]", removed, filepath.Base(f.Name()))
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := append(slices.Clone(keep), TempPrefix+"dir")
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	if r, err := RemoveTemps(filepath.Join(dir, "missing")); err != nil || r != nil {
		t.Errorf("RemoveTemps(missing) = %v, %v", r, err)
	}
}

// One open Dir writes many files, each replaced whole, and leaves no
// temporary file behind; a name in a missing directory fails.
func TestDirWriteFile(t *testing.T) {
	root := t.TempDir()
	d, err := OpenDir(filepath.Join(root, "boot"))
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"1.json", "2.json", "1.json"} {
		content := strings.Repeat(string(rune('a'+i)), 100*(i+1))
		if err := d.WriteFile(name, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, "boot", name))
		if err != nil || string(got) != content {
			t.Fatalf("%s: read back %d bytes, %v; want %d", name, len(got), err, len(content))
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "boot"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"1.json", "2.json"}) {
		t.Errorf("files %q, want [1.json 2.json]", names)
	}
	if err := d.WriteFile("sub/3.json", []byte("x")); err == nil {
		t.Error("writing into a missing subdirectory succeeded")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
