package deployment

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/engine"
)

// answering is a gateway that answers every request with its name.
type answering string

func (a answering) Handle(context.Context, []byte) []byte { return []byte(a) }

// A relay serves its container's jobs in turn: a request an earlier job left on its
// way is refused, even when it reaches the worker after the next job attached; the
// next job's own requests, sent after its fence, are its gateway's.
func TestRelayKeepsEachJobsRequestsApart(t *testing.T) {
	fenceSeen := make(chan string, 8)
	answers := make(chan map[string]any, 4)
	release := make(chan struct{})
	link := launchRelay(func(ctx context.Context, spec engine.ExecSpec) (int, error) {
		send := func(v any) {
			b, _ := json.Marshal(v)
			_, _ = spec.Stdout.Write(append(b, '\n'))
		}
		send(map[string]any{"ready": true})
		closed := make(chan struct{})
		go func() {
			in := bufio.NewReader(spec.Stdin)
			for {
				line, err := in.ReadString('\n')
				if err != nil {
					// The worker closed its input: the relay ends, as the real one does.
					close(closed)
					return
				}
				var f map[string]any
				_ = json.Unmarshal([]byte(line), &f)
				if _, ok := f["fence"]; ok {
					fenceSeen <- strings.TrimSpace(line)
					continue
				}
				answers <- f
			}
		}()
		// Job A's last request, still on its way when job B attaches.
		<-release
		send(map[string]any{"id": 1, "body": `{"method":"eth_sendTransaction"}`})
		// The fences come back after it (job A's, job B's), then job B's request.
		for fence := range fenceSeen {
			send(json.RawMessage(fence))
			if strings.Contains(fence, `"fence":2`) {
				break
			}
		}
		send(map[string]any{"id": 2, "body": `{"method":"eth_sendTransaction"}`})
		select {
		case <-closed:
			return 0, nil
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	})
	defer func() { _ = link.Close() }()
	<-link.listening

	ctx := context.Background()
	link.attach(ctx, answering("job A"))
	link.detach()
	link.attach(ctx, answering("job B"))
	close(release)

	got := map[float64]string{}
	for len(got) < 2 {
		select {
		case a := <-answers:
			got[a["id"].(float64)] = a["body"].(string)
		case <-time.After(30 * time.Second):
			t.Fatalf("answers so far: %v", got)
		}
	}
	if !strings.Contains(got[1], "no deployment is running") {
		t.Errorf("the earlier job's request was answered with %q", got[1])
	}
	if got[2] != "job B" {
		t.Errorf("job B's request was answered with %q", got[2])
	}
	select {
	case <-link.fenced:
	default:
		t.Error("job B's fence did not come back")
	}
}
