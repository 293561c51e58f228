package compilecache

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/tasks"
)

// Expire removes the entries unused for the store's TTL, files left without an entry
// (the index lost them), and entries whose file is gone.
func (s *Store) Expire(ctx context.Context) (tasks.ArtifactReport, error) {
	return s.sweep(ctx, func(c Entry) bool { return time.Since(c.LastUsed) > s.ttl })
}

// Clear removes every entry of the store.
func (s *Store) Clear(ctx context.Context) (tasks.ArtifactReport, error) {
	rep, err := s.sweep(ctx, func(Entry) bool { return true })
	if err != nil {
		return rep, err
	}
	return rep, s.index.DeleteOwner(ctx, s.id)
}

func (s *Store) sweep(ctx context.Context, drop func(Entry) bool) (tasks.ArtifactReport, error) {
	rep := tasks.ArtifactReport{StoreID: s.id, Removed: []string{}}
	entries, err := s.index.List(ctx, s.id)
	if err != nil {
		return rep, err
	}
	indexed := map[string]bool{}
	for _, e := range entries {
		_, statErr := os.Stat(s.file(e.Key))
		if !drop(e) && statErr == nil {
			indexed[e.Key] = true
			rep.Kept++
			continue
		}
		if err := os.Remove(s.file(e.Key)); err != nil && !os.IsNotExist(err) {
			rep.Errors = append(rep.Errors, err.Error())
			indexed[e.Key] = true
			continue
		}
		if err := s.index.Delete(ctx, s.id, e.Key); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
		rep.Removed = append(rep.Removed, e.Key[:12])
	}
	files, err := filepath.Glob(filepath.Join(s.dir, "*.tgz"))
	if err != nil {
		return rep, err
	}
	// Half-written files of a worker that died while saving.
	partial, _ := filepath.Glob(filepath.Join(s.dir, ".partial-*"))
	for _, f := range partial {
		if info, err := os.Stat(f); err == nil && time.Since(info.ModTime()) > time.Hour {
			os.Remove(f)
		}
	}
	for _, f := range files {
		key := strings.TrimSuffix(filepath.Base(f), ".tgz")
		if indexed[key] {
			continue
		}
		// A file being saved right now is still .partial; a .tgz without an entry is
		// one the index lost, or that another worker sharing the store is indexing.
		if info, err := os.Stat(f); err == nil && time.Since(info.ModTime()) < time.Minute {
			continue
		}
		if err := os.Remove(f); err == nil {
			rep.Removed = append(rep.Removed, key[:min(12, len(key))])
		}
	}
	return rep, nil
}
