package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

type entry struct {
	Key      string    `json:"key"`
	Made     time.Time `json:"made"`
	LastUsed time.Time `json:"last_used"`
}

func newIndex(t *testing.T) (*Index[entry], *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewIndex(rdb, tasks.Namespace{Instance: "unit"}, "things",
		func(e entry, used time.Time) entry { e.LastUsed = used; return e },
		func(a, b entry) bool { return a.Made.Before(b.Made) }), mr
}

func TestIndexKeepsEntriesPerOwner(t *testing.T) {
	x, mr := newIndex(t)
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)
	for i, k := range []string{"b", "a", "c"} {
		made := t0.Add(time.Duration(i) * time.Minute)
		if err := x.Put(ctx, "engine-1", k, entry{Key: k, Made: made}, made); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Put(ctx, "engine-2", "z", entry{Key: "z"}, t0); err != nil {
		t.Fatal(err)
	}
	// A use is written apart from the entry, and read back with it.
	used := t0.Add(time.Hour)
	if err := x.Touch(ctx, "engine-1", "a", used); err != nil {
		t.Fatal(err)
	}
	if e, err := x.Get(ctx, "engine-1", "a"); err != nil || !e.LastUsed.Equal(used) {
		t.Errorf("get a: %+v, %v", e, err)
	}
	list, err := x.List(ctx, "engine-1")
	if err != nil || len(list) != 3 || list[0].Key != "b" || list[2].Key != "c" || !list[1].LastUsed.Equal(used) {
		t.Errorf("list in the index's order: %+v, %v", list, err)
	}
	if err := x.Delete(ctx, "engine-1", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Get(ctx, "engine-1", "b"); !errors.Is(err, ErrNoEntry) {
		t.Errorf("deleted entry: %v", err)
	}
	for _, c := range []string{Hit, Hit, Miss, Build} {
		if err := x.Count(ctx, "engine-1", c); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.DeleteOwner(ctx, "engine-1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := x.List(ctx, "engine-1"); len(list) != 0 {
		t.Errorf("entries after DeleteOwner: %+v", list)
	}
	if st, _ := x.Stats(ctx, "engine-1"); st != (Stats{Hits: 2, Misses: 1, Builds: 1}) {
		t.Errorf("counters survive DeleteOwner: %+v", st)
	}
	if owners, _ := x.Owners(ctx); len(owners) != 2 || owners[0] != "engine-1" {
		t.Errorf("owners %v", owners)
	}
	// The keys are the kind's, under the installation.
	if !mr.Exists("deployer:unit:things:engine-2:entries") {
		t.Errorf("keys: %v", mr.Keys())
	}
}
