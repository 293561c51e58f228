package imagecache

import (
	"context"
	"errors"
	"time"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/tasks"
)

func newReport(engineID string) tasks.ImageReport {
	return tasks.ImageReport{EngineID: engineID, Removed: []string{}, InUse: []string{}}
}

func name(img engine.Image) string {
	for _, t := range img.Tags {
		if t != "<none>:<none>" {
			return t
		}
	}
	return shortID(img.ID)
}

func tagged(img engine.Image) bool {
	return name(img) != shortID(img.ID)
}

// Expire removes this engine's runner images unused for maxAge, as the index records
// use; the engine's own build time does not say when an image was last used. An image
// a container uses, one without our labels, and the base image are never removed. An
// image no tag names any more (a newer build took its tag) is removed once unused.
func (r *Resolver) Expire(ctx context.Context, maxAge time.Duration) (tasks.ImageReport, error) {
	rep := newReport(r.eng.ID())
	imgs, err := r.eng.ListImages(ctx, engine.RoleRunnerImage)
	if err != nil {
		return rep, err
	}
	entries, err := r.index.List(ctx, r.eng.ID())
	if err != nil {
		// Without the record of last use nothing can be judged old.
		return rep, err
	}
	byKey := make(map[string]Entry, len(entries))
	for _, e := range entries {
		byKey[e.Key] = e
	}
	now := time.Now()
	// current holds the keys whose entry names an image still on the engine.
	current := make(map[string]bool, len(imgs))
	for _, img := range imgs {
		key := img.Labels[engine.LabelImageKey]
		entry, indexed := byKey[key]
		indexed = indexed && entry.ImageID == img.ID
		switch {
		case indexed && now.Sub(entry.LastUsed) < maxAge:
			current[key] = true
			rep.Kept++
			continue
		case !indexed && tagged(img):
			// Ours, tagged, and not in the index: adopted, with a full period to live.
			r.put(ctx, Entry{Key: key, Tag: name(img), ImageID: img.ID, Framework: img.Labels[engine.LabelFramework],
				EngineID: r.eng.ID(), BuiltAt: img.Created, Size: img.Size, Adopted: true, LastUsed: now})
			rep.Adopted = append(rep.Adopted, name(img))
			current[key] = true
			rep.Kept++
			continue
		}
		// Expired, or superseded (no tag names it: no resolution can reach it).
		if r.remove(ctx, img, &rep) != removed && indexed {
			current[key] = true
		}
	}
	// Entries whose image is gone from the engine are forgotten.
	for key := range byKey {
		if !current[key] {
			if err := r.index.Delete(ctx, r.eng.ID(), key); err != nil {
				rep.Errors = append(rep.Errors, err.Error())
			}
		}
	}
	return rep, nil
}

type removal int

const (
	removed removal = iota
	inUse
	failed
)

// remove removes an image unless a container uses it, and reports what happened.
func (r *Resolver) remove(ctx context.Context, img engine.Image, rep *tasks.ImageReport) removal {
	err := r.eng.RemoveImage(ctx, img.ID)
	switch {
	case err == nil:
		rep.Removed = append(rep.Removed, name(img))
		return removed
	case errors.Is(err, engine.ErrInUse):
		rep.InUse = append(rep.InUse, name(img))
		rep.Kept++
		return inUse
	}
	rep.Errors = append(rep.Errors, err.Error())
	return failed
}

// Clear forgets every runner image of this engine: those no container uses are
// removed, those in use lose their tags (they go once their containers do), and the
// index is emptied, so the next deployment builds again.
func (r *Resolver) Clear(ctx context.Context) (tasks.ImageReport, error) {
	rep := newReport(r.eng.ID())
	imgs, err := r.eng.ListImages(ctx, engine.RoleRunnerImage)
	if err != nil {
		return rep, err
	}
	for _, img := range imgs {
		if r.remove(ctx, img, &rep) != inUse {
			continue
		}
		for _, t := range img.Tags {
			if t == "<none>:<none>" {
				continue
			}
			if err := r.eng.Untag(ctx, t); err != nil {
				rep.Errors = append(rep.Errors, err.Error())
			}
		}
	}
	if err := r.index.DeleteOwner(ctx, r.eng.ID()); err != nil {
		return rep, err
	}
	return rep, nil
}
