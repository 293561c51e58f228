package imagecache

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkImageResolve compares resolving the runner image cold (the engine lacks
// it: a build, as every request paid in the original system) with warm (a hit).
// Run it with `make bench-cache`.
func BenchmarkImageResolve(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()
	res := r.resolver()
	const warmPerCold = 20
	var cold, warm time.Duration
	var colds, warms int
	for range b.N {
		if _, err := res.Clear(ctx); err != nil {
			b.Fatal(err)
		}
		got, err := res.Resolve(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if got.Hit {
			b.Fatal("a resolution after a clear hit")
		}
		cold += got.Duration
		colds++
		for range warmPerCold {
			got, err := res.Resolve(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if !got.Hit {
				b.Fatal("a warm resolution missed")
			}
			warm += got.Duration
			warms++
		}
	}
	coldMS := float64(cold.Microseconds()) / 1000 / float64(colds)
	warmMS := float64(warm.Microseconds()) / 1000 / float64(warms)
	b.ReportMetric(coldMS, "cold-ms")
	b.ReportMetric(warmMS, "warm-ms")
	b.ReportMetric(100*warmMS/coldMS, "warm/cold-%")
	fmt.Printf("\nimage resolution   cold (build)   warm (hit)   warm/cold\n")
	fmt.Printf("mean of %d / %-4d %10.0f ms  %8.2f ms   %7.3f %%\n", colds, warms, coldMS, warmMS, 100*warmMS/coldMS)
}
