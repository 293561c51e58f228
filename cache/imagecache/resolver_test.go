package imagecache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/cache"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/engine/docker"
	"github.com/deployer-dev/deployer/internal/lock"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/runner"
	"github.com/deployer-dev/deployer/tasks"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is one test's installation: its engine view, its Redis index and locks.
type rig struct {
	eng   *docker.Engine
	mr    *miniredis.Miniredis
	rdb   *redis.Client
	index *Index
	locks *lock.Locker
	ns    tasks.Namespace
	def   *runner.Image
}

func newRig(t testing.TB) *rig {
	t.Helper()
	instance := testenv.Instance("runner")
	eng := testenv.RequireEngine(t, instance)
	t.Cleanup(func() { _ = testenv.Cleanup(instance) })
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	def, err := runner.NewFoundry(testenv.Toolchain(), testenv.BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	ns := tasks.Namespace{Instance: instance}
	return &rig{eng: eng, mr: mr, rdb: rdb, index: NewIndex(rdb, ns), locks: lock.New(rdb, 10*time.Second), ns: ns, def: def}
}

// resolver is one process's resolver (its own single flight) on the rig.
func (r *rig) resolver() *Resolver {
	return NewResolver(r.eng, r.def, r.index, r.locks, r.ns, true, quiet)
}

func (r *rig) stats(t testing.TB) cache.Stats {
	t.Helper()
	st, err := r.index.Stats(context.Background(), r.eng.ID())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// runnerImages lists the rig's runner images on the engine, tagged or not: one per
// build, since builds use no layer cache.
func (r *rig) runnerImages(t testing.TB) []engine.Image {
	t.Helper()
	imgs, err := r.eng.ListImages(context.Background(), engine.RoleRunnerImage)
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

func TestResolveBuildsOnceThenHits(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	res := r.resolver()
	first, err := res.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Hit {
		t.Error("first resolution on an empty engine reported a hit")
	}
	repo := r.def.Repository(r.eng.Instance())
	if first.Tag != repo+":"+first.Key[:12] {
		t.Errorf("tag %s for key %s", first.Tag, first.Key)
	}
	second, err := res.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Hit || second.ID != first.ID {
		t.Errorf("second resolution: hit %t, id %s (first %s)", second.Hit, second.ID, first.ID)
	}
	latest, err := r.eng.InspectImage(ctx, repo+":latest")
	if err != nil || latest.ID != first.ID {
		t.Errorf(":latest is %s (%v), want %s", latest.ID, err, first.ID)
	}
	if st := r.stats(t); st.Builds != 1 || st.Hits != 1 || st.Misses != 1 {
		t.Errorf("stats %+v", st)
	}
	entry, err := r.index.Get(ctx, r.eng.ID(), first.Key)
	if err != nil {
		t.Fatal(err)
	}
	if entry.ImageID != first.ID || entry.Tag != first.Tag || entry.Size <= 0 || entry.BuildMS <= 0 ||
		entry.BuiltAt.IsZero() || entry.LastUsed.Before(entry.BuiltAt) || entry.EngineID != r.eng.ID() || entry.Framework != runner.Foundry {
		t.Errorf("index entry %+v", entry)
	}
	// A new process hashes the context again and finds the same key.
	other, err := runner.NewFoundry(testenv.Toolchain(), testenv.BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := r.eng.InspectImage(ctx, testenv.BaseImage)
	if k, _ := other.Key(base.ID); k != first.Key {
		t.Errorf("key not stable across processes: %s vs %s", k, first.Key)
	}
	if k, _ := other.Key("sha256:another-base"); k == first.Key {
		t.Error("the key does not depend on the base image")
	}
}

// Ten resolutions at once from two processes on one engine build once.
func TestBurstBuildsOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	procs := []*Resolver{r.resolver(), r.resolver()}
	var wg sync.WaitGroup
	ids := make([]string, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := procs[i%2].Resolve(context.Background())
			ids[i], errs[i] = res.ID, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("resolution %d: %v", i, err)
		}
		if ids[i] != ids[0] {
			t.Errorf("resolution %d got image %s, resolution 0 got %s", i, ids[i], ids[0])
		}
	}
	if st := r.stats(t); st.Builds != 1 {
		t.Errorf("%d builds for a burst of 10, want 1 (stats %+v)", st.Builds, st)
	}
	if imgs := r.runnerImages(t); len(imgs) != 1 {
		t.Errorf("%d runner images on the engine, want 1", len(imgs))
	}
}

func TestRemovedImageIsRebuiltAndUnindexedAdopted(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	res := r.resolver()
	first, err := res.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Someone removes the image behind the cache's back: the entry is stale.
	if err := r.eng.RemoveImage(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	again, err := res.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Hit || again.ID == first.ID {
		t.Errorf("resolution after removal: hit %t, id %s", again.Hit, again.ID)
	}
	if e, _ := r.index.Get(ctx, r.eng.ID(), again.Key); e.ImageID != again.ID {
		t.Errorf("index names %s, engine has %s", e.ImageID, again.ID)
	}
	// The index loses its entries: the image on the engine is adopted, not rebuilt.
	if err := r.index.DeleteOwner(ctx, r.eng.ID()); err != nil {
		t.Fatal(err)
	}
	adopted, err := res.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !adopted.Hit || adopted.ID != again.ID {
		t.Errorf("unindexed image not adopted: %+v", adopted)
	}
	if e, err := r.index.Get(ctx, r.eng.ID(), adopted.Key); err != nil || !e.Adopted || e.ImageID != again.ID {
		t.Errorf("adopted entry %+v, %v", e, err)
	}
	if st := r.stats(t); st.Builds != 2 {
		t.Errorf("%d builds, want 2", st.Builds)
	}
}

func TestResolvesWithoutRedis(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	built, err := r.resolver().Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.mr.Close()
	got, err := r.resolver().Resolve(ctx)
	if err != nil {
		t.Fatalf("resolution without Redis: %v", err)
	}
	if !got.Hit || got.ID != built.ID {
		t.Errorf("without Redis: %+v", got)
	}
}

func TestExpireRemovesOnlyOldUnusedImagesOfOurs(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	res := r.resolver()
	img, err := res.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Used a minute ago: kept.
	rep, err := res.Expire(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 0 || rep.Kept != 1 {
		t.Errorf("fresh image: %+v", rep)
	}

	// Last used two days ago, but a container uses it: kept.
	old := time.Now().Add(-48 * time.Hour)
	if err := r.index.Touch(ctx, r.eng.ID(), img.Key, old); err != nil {
		t.Fatal(err)
	}
	id, err := r.eng.CreateContainer(ctx, engine.ContainerSpec{Image: img.ID, Cmd: []string{"sleep", "300"},
		Labels: r.eng.Labels(engine.RoleJob, nil), Network: "none"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = res.Expire(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 0 || len(rep.InUse) != 1 {
		t.Errorf("image in use: %+v", rep)
	}
	if err := r.eng.RemoveContainer(ctx, id); err != nil {
		t.Fatal(err)
	}

	// Another installation's image, and the base: never touched.
	foreign := buildForeign(t, r)
	rep, err = res.Expire(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0] != img.Tag {
		t.Errorf("old unused image: %+v", rep)
	}
	if _, err := r.eng.InspectImage(ctx, img.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("expired image still on the engine: %v", err)
	}
	if _, err := r.index.Get(ctx, r.eng.ID(), img.Key); !errors.Is(err, cache.ErrNoEntry) {
		t.Errorf("expired image still indexed: %v", err)
	}
	for _, ref := range []string{testenv.BaseImage, foreign} {
		if _, err := r.eng.InspectImage(ctx, ref); err != nil {
			t.Errorf("%s was removed: %v", ref, err)
		}
	}
}

// buildForeign builds a tiny runner image labelled as another installation's.
func buildForeign(t *testing.T, r *rig) string {
	t.Helper()
	otherInstance := r.eng.Instance() + "-other"
	t.Cleanup(func() { _ = testenv.Cleanup(otherInstance) })
	tag := "deployer-test-foreign-" + otherInstance + ":x"
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(tarOf(pw, map[string]string{"Dockerfile": "FROM " + testenv.BaseImage + "\n"}))
	}()
	labels := map[string]string{engine.LabelManagedBy: engine.ManagedByValue, engine.LabelInstance: otherInstance,
		engine.LabelRole: engine.RoleRunnerImage, engine.LabelImageKey: "foreign"}
	if _, err := r.eng.Build(context.Background(), engine.BuildSpec{Context: pr, Tags: []string{tag}, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	return tag
}

func TestClearMakesTheNextResolutionBuild(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	res := r.resolver()
	img, err := res.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A chain runs in the image: the clear cannot remove it, only forget it.
	id, err := r.eng.CreateContainer(ctx, engine.ContainerSpec{Image: img.ID, Cmd: []string{"sleep", "300"},
		Labels: r.eng.Labels(engine.RoleChain, nil), Network: "none"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := res.Clear(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.InUse) != 1 || len(rep.Removed) != 0 {
		t.Errorf("clear with the image in use: %+v", rep)
	}
	if c, err := r.eng.InspectContainer(ctx, id); err != nil || !c.Running {
		t.Errorf("the clear disturbed a running container: %v", err)
	}
	next, err := res.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next.Hit || next.ID == img.ID {
		t.Errorf("resolution after a clear: hit %t, id %s", next.Hit, next.ID)
	}
	// Once the container is gone, a clear removes both images.
	if err := r.eng.RemoveContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	rep, err = res.Clear(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 2 || len(r.runnerImages(t)) != 0 {
		t.Errorf("second clear: %+v, %d images left", rep, len(r.runnerImages(t)))
	}
}

// A build that fails fails the resolution with the build's last lines; the next
// resolution tries again.
func TestFailedBuildIsRetried(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("bin/forge", "#!/bin/sh\necho forge is broken >&2\nexit 3\n", 0o755)
	write("bin/anvil", "#!/bin/sh\necho anvil 0\n", 0o755)
	write("bin/cast", "#!/bin/sh\necho cast 0\n", 0o755)
	write("solc/node_modules/solc/index.js", "module.exports = { version: () => '0.8.30+commit.fake' };\n", 0o644)
	def, err := runner.NewFoundry(dir, testenv.BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	res := NewResolver(r.eng, def, r.index, r.locks, r.ns, true, quiet)
	_, err = res.Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "forge is broken") {
		t.Fatalf("failed build: %v, want the build's output", err)
	}
	// The steps that succeeded made images; the failed build took them away.
	steps := regexp.MustCompile(`---> ([0-9a-f]{12})`).FindAllStringSubmatch(err.Error(), -1)
	if len(steps) == 0 {
		t.Fatalf("the build's output names no step image:\n%v", err)
	}
	base, _ := r.eng.InspectImage(context.Background(), testenv.BaseImage)
	for _, m := range steps {
		_, ierr := r.eng.InspectImage(context.Background(), m[1])
		if strings.HasPrefix(strings.TrimPrefix(base.ID, "sha256:"), m[1]) {
			if ierr != nil {
				t.Errorf("the failed build removed the base image: %v", ierr)
			}
			continue
		}
		if !errors.Is(ierr, engine.ErrNotFound) {
			t.Errorf("the failed build left image %s (%v)", m[1], ierr)
		}
	}
	write("bin/forge", "#!/bin/sh\necho forge 0\n", 0o755)
	def, err = runner.NewFoundry(dir, testenv.BaseImage)
	if err != nil {
		t.Fatal(err)
	}
	res = NewResolver(r.eng, def, r.index, r.locks, r.ns, true, quiet)
	if _, err := res.Resolve(context.Background()); err != nil {
		t.Fatalf("build after the fix: %v", err)
	}
}
