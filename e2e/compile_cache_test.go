package e2e

import (
	"archive/tar"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/producer"
)

// A second deployment of an unchanged project compiles nothing; a changed one
// compiles, and deploys what it says, never the cached artifacts of the first.
func TestCompileCache(t *testing.T) {
	s := ownStack(t, stackOpts{})
	ctx := context.Background()
	dir := t.TempDir()
	copyTree(t, filepath.Join(testenv.RepoRoot(), "examples", "counter"), dir)
	deploy := func() api.Job {
		t.Helper()
		up, err := s.client.UploadDir(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		j := s.deploy(t, api.DeployRequest{PathURL: up.PathURL})
		requireCompleted(t, j)
		return j
	}
	first := deploy()
	if first.Cache.CompileHit {
		t.Fatal("the first deployment hit the compile cache")
	}
	second := deploy()
	if !second.Cache.CompileHit {
		t.Fatalf("the second deployment of an unchanged project compiled (%+v)", second.Cache)
	}
	logs, _ := s.client.Logs(ctx, second.JobID)
	if !strings.Contains(logs, "No files changed, compilation skipped") || strings.Contains(logs, "Compiling") {
		t.Errorf("forge compiled on a hit:\n%s", logs)
	}
	// The script makes Counter(42) and increments it: 43.
	if n := callUint(t, second.Result.RPCURL, second.Result.Contracts[0].Address, "0x8381f58a"); n != 43 {
		t.Errorf("number() = %d after a hit", n)
	}

	// Change the source: the constructor now adds 100.
	src := filepath.Join(dir, "src", "Counter.sol")
	b, _ := os.ReadFile(src)
	changed := strings.Replace(string(b), "number = initial;", "number = initial + 100;", 1)
	if changed == string(b) {
		t.Fatal("the test's edit did not apply")
	}
	if err := os.WriteFile(src, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	third := deploy()
	if third.Cache.CompileHit {
		t.Error("a changed project hit the compile cache")
	}
	if n := callUint(t, third.Result.RPCURL, third.Result.Contracts[0].Address, "0x8381f58a"); n != 143 {
		t.Errorf("number() = %d, want 143 from the changed source", n)
	}

	// The store holds only the compiler's output, never forge's sensitive values.
	files, _ := filepath.Glob(filepath.Join(s.foundryCacheDir(), "*.tgz"))
	if len(files) != 2 {
		t.Errorf("%d entries in the store, want 2", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		err = compilecache.Each(data, compilecache.Foundry, func(h *tar.Header, _ io.Reader) error {
			if strings.HasPrefix(h.Name, "cache/") && h.Name != "cache/solidity-files-cache.json" && h.Name != "cache/" {
				t.Errorf("%s stores %s", filepath.Base(f), h.Name)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}

	var st producer.CompileCacheStatus
	s.call(t, http.MethodGet, "/admin/server/foundry-cache/status", http.StatusOK, &st)
	if !st.CacheEnabled || st.CachedCompilations != 2 || st.Hits != 1 || st.Misses != 2 || st.CacheTTLSeconds != 3600 || st.SizeBytes <= 0 ||
		st.ByFramework["foundry"] != 2 || st.ByFramework["hardhat"] != 0 {
		t.Errorf("status %+v", st)
	}
	var cl producer.ClearResponse
	s.call(t, http.MethodPost, "/admin/server/foundry-cache/clear", http.StatusOK, &cl)
	if !cl.Success || cl.Message != "Cleared all foundry cache" {
		t.Fatalf("clear %+v", cl)
	}
	s.call(t, http.MethodGet, "/admin/server/foundry-cache/status", http.StatusOK, &st)
	if st.CachedCompilations != 0 {
		t.Errorf("after a clear: %d compilations", st.CachedCompilations)
	}
	if files, _ := filepath.Glob(filepath.Join(s.foundryCacheDir(), "*.tgz")); len(files) != 0 {
		t.Errorf("after a clear the store holds %v", files)
	}
	if deploy().Cache.CompileHit {
		t.Error("a deployment after a clear hit")
	}
}
