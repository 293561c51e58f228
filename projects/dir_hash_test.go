package projects

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestContentHash(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(filepath.Join(d, "src"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "src", "A.sol"), []byte("contract A {}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "foundry.toml"), []byte("[profile.default]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-time.Hour)
	_ = os.Chtimes(filepath.Join(b, "src", "A.sol"), past, past)
	if err := os.WriteFile(filepath.Join(b, ".env"), []byte("SECRET=1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	hash := func(dir string, replace map[string][]byte) string {
		h, err := ContentHash(dir, DefaultLimits, replace, nil)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if hash(a, nil) != hash(b, nil) {
		t.Error("copies differing in times and skipped files hash differently")
	}
	toml := map[string][]byte{"foundry.toml": []byte("[profile.default]\noffline = true\n")}
	if hash(a, toml) == hash(a, nil) {
		t.Error("the replaced foundry.toml does not count")
	}
	if err := os.WriteFile(filepath.Join(b, "src", "A.sol"), []byte("contract A { }"), 0o644); err != nil {
		t.Fatal(err)
	}
	if hash(a, nil) == hash(b, nil) {
		t.Error("a changed source hashes the same")
	}
	if err := os.Chmod(filepath.Join(a, "src", "A.sol"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "src", "A.sol"), []byte("contract A {}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if hash(a, nil) == hash(b, nil) {
		t.Error("the executable bit does not count")
	}
}
