package e2e

import (
	"fmt"
	"testing"

	"github.com/deployer-dev/deployer/api"
)

// BenchmarkWarmDeployment compares a warm deployment of examples/counter (image,
// container and chain reused) with the compile cache and without it, and says how
// much of the cached one is still spent outside forge itself. Run it with
// `make bench-compile`.
func BenchmarkWarmDeployment(b *testing.B) {
	requireParts(b)
	with, err := startStack(stackOpts{})
	if err != nil {
		b.Fatal(err)
	}
	defer with.stop()
	without, err := startStack(stackOpts{env: []string{"FOUNDRY_CACHE_ENABLED=false"}})
	if err != nil {
		b.Fatal(err)
	}
	defer without.stop()
	req := api.DeployRequest{PathURL: "examples/counter"}
	// The first deployment builds the image, starts the chain and fills the caches.
	for _, s := range []*stack{with, without} {
		requireCompleted(b, s.deploy(b, req))
	}
	var withTotal, withForge, withGateway, withoutTotal, withoutForge int64
	b.ResetTimer()
	for range b.N {
		j := with.deploy(b, req)
		requireCompleted(b, j)
		if !j.Cache.CompileHit || !j.Cache.ContainerReused || !j.Cache.ImageHit {
			b.Fatalf("a warm deployment missed a cache: %+v", j.Cache)
		}
		withTotal += j.Timings.Total
		withForge += j.Timings.Within.Forge
		withGateway += j.Timings.Within.Gateway
		j = without.deploy(b, req)
		requireCompleted(b, j)
		withoutTotal += j.Timings.Total
		withoutForge += j.Timings.Within.Forge
	}
	n := float64(b.N)
	w, wo := float64(withTotal)/n, float64(withoutTotal)/n
	outside := 100 * float64(withTotal-withForge) / float64(withTotal)
	b.ReportMetric(w, "cached-ms")
	b.ReportMetric(wo, "uncached-ms")
	b.ReportMetric(100*w/wo, "cached/uncached-%")
	b.ReportMetric(outside, "outside-forge-%")
	b.ReportMetric(float64(withGateway)/n, "gateway-ms")
	fmt.Printf("\nwarm deployment of examples/counter (n=%d)   without compile cache   with   with/without   of which outside forge\n", b.N)
	fmt.Printf("%44s %17.0f ms %6.0f ms %11.1f %% %16.1f %%\n", "", wo, w, 100*w/wo, outside)
	fmt.Printf("%44s %17.0f ms %6.0f ms   (time in forge)\n", "", float64(withoutForge)/n, float64(withForge)/n)
	fmt.Printf("%44s %17s    %6.1f ms   (the gateway's own: its relay's start and its work beyond the chain's answers)\n", "", "", float64(withGateway)/n)
}
