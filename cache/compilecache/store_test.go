package compilecache

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newStore(t *testing.T) (*Store, *Index, *miniredis.Miniredis, string) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	index := NewIndex(rdb, tasks.Namespace{Instance: "unit"})
	dir := t.TempDir()
	s, err := Open(dir, index, time.Hour, true, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return s, index, mr, dir
}

// tgz builds artifacts as `tar -cz out cache/solidity-files-cache.json` would.
func tgz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

var goodArtifacts = map[string]string{
	"out/Counter.sol/Counter.json":    `{"bytecode":"0x60"}`,
	"cache/solidity-files-cache.json": `{"files":{}}`,
}

const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestSaveThenLookup(t *testing.T) {
	s, index, _, _ := newStore(t)
	ctx := context.Background()
	if _, ok := s.Lookup(ctx, key); ok {
		t.Fatal("hit on an empty store")
	}
	data := tgz(t, goodArtifacts)
	if err := s.Save(ctx, key, Foundry, bytes.NewReader(data), time.Second); err != nil {
		t.Fatal(err)
	}
	got, ok := s.Lookup(ctx, key)
	if !ok || !bytes.Equal(got, data) {
		t.Fatalf("lookup after save: %t", ok)
	}
	names := map[string]bool{}
	if err := Each(got, Foundry, func(h *tar.Header, _ io.Reader) error { names[h.Name] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !names["out/Counter.sol/Counter.json"] || !names["cache/solidity-files-cache.json"] {
		t.Errorf("entries %v", names)
	}
	st, _ := index.Stats(ctx, s.ID())
	if st.Hits != 1 || st.Misses != 1 {
		t.Errorf("stats %+v", st)
	}
	if _, ok := s.Lookup(ctx, strings.Repeat("f", 64)); ok {
		t.Error("another key hit")
	}
}

func TestDamagedEntryIsAMiss(t *testing.T) {
	s, index, _, dir := newStore(t)
	ctx := context.Background()
	if err := s.Save(ctx, key, Foundry, bytes.NewReader(tgz(t, goodArtifacts)), time.Second); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, key+".tgz")
	b, _ := os.ReadFile(file)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup(ctx, key); ok {
		t.Fatal("a damaged entry was served")
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Error("the damaged file remains")
	}
	if _, err := index.Get(ctx, s.ID(), key); err == nil {
		t.Error("the damaged entry remains indexed")
	}
	// An entry whose file is gone (another host's store, say) is a miss too.
	if err := s.Save(ctx, key, Foundry, bytes.NewReader(tgz(t, goodArtifacts)), time.Second); err != nil {
		t.Fatal(err)
	}
	os.Remove(file)
	if _, ok := s.Lookup(ctx, key); ok {
		t.Fatal("an entry without its file was served")
	}
}

func TestSaveRefusesAnythingButArtifacts(t *testing.T) {
	s, _, _, dir := newStore(t)
	ctx := context.Background()
	for name, files := range map[string]map[string]string{
		"sensitive":  {"cache/Deploy.s.sol/31337/run-latest.json": "{}"},
		"source":     {"src/Counter.sol": "contract C {}"},
		"escape":     {"out/../../etc/x": "x"},
		"broadcast":  {"broadcast/Deploy.s.sol/run-latest.json": "{}"},
		"foundry.tl": {"foundry.toml": "ffi = true"},
	} {
		if err := s.Save(ctx, key, Foundry, bytes.NewReader(tgz(t, files)), time.Second); err == nil {
			t.Errorf("%s: stored", name)
		}
	}
	if err := s.Save(ctx, key, Foundry, strings.NewReader("not gzip"), time.Second); err == nil {
		t.Error("garbage stored")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if filepath.Base(f) != ".store-id" {
			t.Errorf("refused save left %s", f)
		}
	}
}

func TestExpireAndClear(t *testing.T) {
	s, index, _, dir := newStore(t)
	ctx := context.Background()
	old, fresh := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, k := range []string{old, fresh} {
		if err := s.Save(ctx, k, Foundry, bytes.NewReader(tgz(t, goodArtifacts)), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := index.Touch(ctx, s.ID(), old, time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A file the index does not know, old enough not to be a save in progress.
	stray := filepath.Join(dir, strings.Repeat("c", 64)+".tgz")
	if err := os.WriteFile(stray, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	_ = os.Chtimes(stray, past, past)
	rep, err := s.Expire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 2 || rep.Kept != 1 {
		t.Errorf("expiry %+v", rep)
	}
	if _, ok := s.Lookup(ctx, fresh); !ok {
		t.Error("a fresh entry expired")
	}
	if _, ok := s.Lookup(ctx, old); ok {
		t.Error("an old entry survived")
	}
	rep, err = s.Clear(ctx)
	if err != nil || len(rep.Removed) != 1 {
		t.Fatalf("clear %+v %v", rep, err)
	}
	if list, _ := index.List(ctx, s.ID()); len(list) != 0 {
		t.Errorf("index after clear: %v", list)
	}
}

func TestStoreIDIsSharedByTheDirectory(t *testing.T) {
	s, index, _, dir := newStore(t)
	again, err := Open(dir, index, time.Hour, true, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != s.ID() {
		t.Errorf("two opens of one directory: %s and %s", s.ID(), again.ID())
	}
	other, err := Open(t.TempDir(), index, time.Hour, true, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID() == s.ID() {
		t.Error("two directories share an id")
	}
}

func TestWithoutRedisEverythingMisses(t *testing.T) {
	s, _, mr, _ := newStore(t)
	ctx := context.Background()
	if err := s.Save(ctx, key, Foundry, bytes.NewReader(tgz(t, goodArtifacts)), time.Second); err != nil {
		t.Fatal(err)
	}
	mr.Close()
	if _, ok := s.Lookup(ctx, key); ok {
		t.Error("a hit without the index to check it against")
	}
}
