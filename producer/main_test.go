package producer

import (
	"testing"

	"go.uber.org/goleak"
)

// No test leaves a goroutine running. go-redis starts a circuit-breaker
// cleanup loop per client that its Close does not always stop (one per
// client, ticking every five minutes, never growing): it is theirs, not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/maintnotifications.(*CircuitBreakerManager).cleanupLoop"))
}
