package projects

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

func newTestStore(t *testing.T, ttl time.Duration) (*Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewStore(rdb, tasks.Namespace{Instance: "unit"}, ttl), mr
}

func TestSum(t *testing.T) {
	b := []byte("archive")
	h := sha256.Sum256(b)
	if got, want := Sum(b), hex.EncodeToString(h[:]); got != want {
		t.Errorf("Sum = %s, want %s", got, want)
	}
	if got := Sum(nil); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("Sum(nil) = %s", got)
	}
}

func TestStorePutGet(t *testing.T) {
	ctx := context.Background()
	const ttl = 24 * time.Hour
	s, mr := newTestStore(t, ttl)
	archive := tgz(t, reg("foundry.toml", goodTOML))

	sum, err := s.Put(ctx, archive)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if sum != Sum(archive) {
		t.Fatalf("Put = %s, want Sum %s", sum, Sum(archive))
	}
	key := "deployer:unit:project:" + sum
	if !mr.Exists(key) {
		t.Fatalf("no key %s; keys: %v", key, mr.Keys())
	}
	if got := mr.TTL(key); got != ttl {
		t.Errorf("TTL = %v, want %v", got, ttl)
	}

	got, err := s.Get(ctx, sum)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(got) != string(archive) {
		t.Errorf("Get returned other bytes")
	}

	// Get extends the archive's life.
	mr.SetTTL(key, time.Minute)
	if _, err := s.Get(ctx, sum); err != nil {
		t.Fatal(err)
	}
	if got := mr.TTL(key); got != ttl {
		t.Errorf("TTL after Get = %v, want %v", got, ttl)
	}

	// Putting the same archive again gives the same id.
	sum2, err := s.Put(ctx, archive)
	if err != nil || sum2 != sum {
		t.Errorf("second Put = %s, %v; want %s", sum2, err, sum)
	}
}

func TestStoreExpires(t *testing.T) {
	ctx := context.Background()
	s, mr := newTestStore(t, time.Hour)
	sum, err := s.Put(ctx, []byte("archive"))
	if err != nil {
		t.Fatal(err)
	}
	mr.FastForward(2 * time.Hour)
	if _, err := s.Get(ctx, sum); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after expiry: err = %v, want ErrNotFound", err)
	}
}

func TestStoreGetUnknown(t *testing.T) {
	s, _ := newTestStore(t, time.Hour)
	b, err := s.Get(context.Background(), Sum([]byte("never uploaded")))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %q, %v; want ErrNotFound", b, err)
	}
}

func TestStoreTampered(t *testing.T) {
	ctx := context.Background()
	s, mr := newTestStore(t, time.Hour)
	sum, err := s.Put(ctx, []byte("the real archive"))
	if err != nil {
		t.Fatal(err)
	}
	if err := mr.Set("deployer:unit:project:"+sum, "other bytes"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(ctx, sum)
	if err == nil {
		t.Fatalf("Get of a tampered entry = %q, want an error", b)
	}
	if errors.Is(err, ErrNotFound) {
		t.Errorf("a tampered entry is not a missing one: %v", err)
	}
	if b != nil {
		t.Errorf("Get returned bytes with its error")
	}
	if !strings.Contains(err.Error(), "does not match") {
		t.Errorf("err = %v", err)
	}
}

func TestStoreNamespaces(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	a := NewStore(rdb, tasks.Namespace{Instance: "a"}, time.Hour)
	b := NewStore(rdb, tasks.Namespace{Instance: "b"}, time.Hour)
	sum, err := a.Put(ctx, []byte("archive"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, sum); !errors.Is(err, ErrNotFound) {
		t.Errorf("another instance sees the archive: %v", err)
	}
}

func TestParseUploadURL(t *testing.T) {
	hex64 := Sum([]byte("x"))
	tests := []struct {
		in       string
		want     string
		isUpload bool
		invalid  bool
	}{
		{"project://" + hex64, hex64, true, false},
		{"sha256:" + hex64, hex64, true, false},
		{"project://sha256:" + hex64, hex64, true, false},
		{"project://" + hex64[:63], "", true, true},
		{"project://" + hex64 + "0", "", true, true},
		{"project://" + hex64[:63] + "g", "", true, true},
		{"project://", "", true, true},
		{"project://../" + hex64[3:], "", true, true},
		{"sha256:nothex", "", true, true},
		{"examples/counter", "", false, false},
		{"file:///srv/projects/x", "", false, false},
		{hex64, "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, isUpload, err := ParseUploadURL(tt.in)
			if isUpload != tt.isUpload {
				t.Errorf("isUpload = %v, want %v", isUpload, tt.isUpload)
			}
			if tt.invalid {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseUploadURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
