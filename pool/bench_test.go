package pool

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkJobContainer compares what a job pays for its container: a fresh one (as
// `docker run`: create, start, run a command, remove) against a warm lease (take an
// idle container, run the command, give it back through the verified reset, which
// the job does not wait for but the worker still pays). Run it with `make bench-pool`.
func BenchmarkJobContainer(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()
	fresh := New(r.eng, r.rdb, r.ns, Config{Enabled: false, MaxContainers: 1, WorkerID: "bench-fresh"}, slog.New(slog.DiscardHandler))
	warm := New(r.eng, r.rdb, r.ns, Config{Enabled: true, MaxIdlePerKey: 1, MaxContainers: 1, WorkerID: "bench-warm"}, slog.New(slog.DiscardHandler))
	// One warm container, ready.
	l, err := warm.Lease(ctx, r.spec(), "prime")
	if err != nil {
		b.Fatal(err)
	}
	l.Release(true)
	warm.resets.Wait()

	var freshT, warmT, warmJobT time.Duration
	for range b.N {
		start := time.Now()
		l, err := fresh.Lease(ctx, r.spec(), "fresh")
		if err != nil {
			b.Fatal(err)
		}
		r.sh(b, l.ID, "true")
		l.Release(true)
		freshT += time.Since(start)

		start = time.Now()
		l, err = warm.Lease(ctx, r.spec(), "warm")
		if err != nil {
			b.Fatal(err)
		}
		if !l.Reused {
			b.Fatal("warm lease missed")
		}
		r.sh(b, l.ID, "true")
		l.Release(true)
		warmJobT += time.Since(start)
		warm.resets.Wait()
		warmT += time.Since(start)
	}
	n := float64(b.N)
	f := float64(freshT.Microseconds()) / 1000 / n
	w := float64(warmT.Microseconds()) / 1000 / n
	wj := float64(warmJobT.Microseconds()) / 1000 / n
	b.ReportMetric(f, "fresh-ms")
	b.ReportMetric(wj, "warm-job-ms")
	b.ReportMetric(w, "warm-with-reset-ms")
	b.ReportMetric(100*wj/f, "warm/fresh-%")
	fmt.Printf("\njob container (n=%d)   fresh (docker run)   warm lease (job waits)   warm + reset   warm/fresh\n", b.N)
	fmt.Printf("%22s %14.0f ms %19.0f ms %12.0f ms %10.1f %%\n", "", f, wj, w, 100*wj/f)
}
