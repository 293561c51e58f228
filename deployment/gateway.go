package deployment

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/gateway"
	"github.com/deployer-dev/deployer/pool"
)

// The job's gateway: the only way its container reaches the chain (see package
// gateway). It is opened when the job has its chain; the container's relay carries
// the job's requests to it while the job runs.
//
// The relay (`node relay.js`, its standard input and output carrying the requests)
// runs as relayUser, not as the job's user: no process of a job can signal, trace or
// read it, and a reset, which ends every process of the job's user, leaves it
// running. It outlives the job that started it: each job attaches its gateway for its
// own time, the container keeps the relay for the next, and a warm job never waits
// for Node.js to start.

// relayUser runs the relay. It owns nothing in the container.
const relayUser = "10002:10002"

// clientOf names who a job deploys for: its client (a token's holder), or, without
// tokens, the job alone.
func clientOf(client, jobID string) string {
	if client != "" {
		return "client:" + client
	}
	return "job:" + jobID
}

// openGateway makes the job's gateway, in front of its chain, signing with its
// client's key; transactions the job signs itself take their sender's lock.
func (j *job) openGateway() error {
	net := j.proj.plan.Network
	cfg := gateway.Config{
		Upstream: gateway.NewUpstream(j.chain.WorkerRPC, j.chain.Admin()),
		ChainID:  net.ChainID,
		ClaimRaw: func(ctx context.Context, from common.Address) error {
			_, unlock, err := j.d.Locks.LockWait(ctx, j.senderLock(from), j.d.cfg.Steps.SenderWait)
			if err != nil {
				return err
			}
			j.mu.Lock()
			j.unlocks = append(j.unlocks, unlock)
			j.mu.Unlock()
			return nil
		},
		Log: j.log,
	}
	if j.remote() {
		// The network's key, its caps, and a journal that survives the worker.
		key, err := crypto.HexToECDSA(strings.TrimPrefix(net.DeployerKey(), "0x"))
		if err != nil {
			return fmt.Errorf("network %s: its deployer key does not parse", net.Name)
		}
		cfg.Key, cfg.Remote, cfg.MaxValue, cfg.MaxSpend = key, true, net.MaxValue(), net.MaxSpend()
		cfg.Journal = j.d.Journals.Job(j.p.JobID)
		cfg.ClaimRaw = nil
	} else {
		key, err := j.d.Senders.Key(clientOf(j.p.Client, j.p.JobID))
		if err != nil {
			return err
		}
		cfg.Key = key
	}
	j.gw = gateway.New(cfg)
	return nil
}

// senderLock names the lock of an address on the job's chain: a managed chain is its
// engine's, a real network everyone's.
func (j *job) senderLock(a common.Address) string {
	owner := j.d.EngineID
	if j.remote() {
		owner = "remote"
	}
	return j.d.Namespace.SenderLock(owner, j.proj.plan.Network.Name, strings.ToLower(a.Hex()))
}

// startRelay attaches the job's gateway to the container's relay, and gives the
// job's box its agent: the ones the container readied while it idled, when they
// still run, or new ones. It does not wait for the relay to listen (waitRelay does).
func (j *job) startRelay(ctx context.Context) {
	var link *relayLink
	if w, ok := j.box.c.TakeWarm().(*warmed); ok {
		if w.relay.alive() {
			link = w.relay
		} else {
			_ = w.relay.Close()
		}
		if w.agent.alive() {
			j.box.agent = w.agent
		} else {
			_ = w.agent.Close()
		}
	}
	if link == nil {
		link = launchRelay(j.box.c.Exec)
	}
	if j.box.agent == nil {
		j.box.agent = launchAgent(j.box.c.Exec)
	}
	link.attach(ctx, j.gw)
	j.relay = link
}

// waitRelay waits until the relay listens and passed back the job's fence.
func (j *job) waitRelay(ctx context.Context) error {
	start := time.Now()
	defer func() { j.relayWait = time.Since(start) }()
	j.relay.mu.Lock()
	fenced := j.relay.fenced
	j.relay.mu.Unlock()
	select {
	case <-fenced:
		return nil
	case <-j.relay.ended:
		j.box.broken = true
		if err := j.relay.err; err != nil {
			return err
		}
		return fmt.Errorf("the job's relay ended before it listened")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopRelay takes the job's gateway off the relay and hands the relay back to the
// container, for its next job.
func (j *job) stopRelay() {
	if j.relay == nil {
		return
	}
	j.relay.detach()
	if !j.relay.alive() {
		j.box.broken = true
		_ = j.relay.Close()
		return
	}
	j.box.c.Keep(j.relay)
}

// relayLink is a relay in a job container and the worker's end of it.
type relayLink struct {
	in  *io.PipeWriter
	out *bufio.Reader
	// listening is closed once the relay listens; ended once its exec ended, with
	// err: nil, or why it could not run.
	listening chan struct{}
	ended     chan struct{}
	err       error
	stop      context.CancelFunc

	// h answers the requests of the job attached, in its ctx, once the relay passed
	// back fence (fenced is closed then); before, and with none attached, requests
	// are refused: they are an earlier job's.
	mu     sync.Mutex
	h      gateway.Handler
	hctx   context.Context
	fence  uint64
	fenced chan struct{}
}

// launchRelay starts a relay with exec, which runs a command in the container, and
// serves what it relays to whichever job is attached.
func launchRelay(exec func(context.Context, engine.ExecSpec) (int, error)) *relayLink {
	ctx, stop := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	l := &relayLink{in: inW, out: bufio.NewReaderSize(outR, 64<<10), listening: make(chan struct{}), ended: make(chan struct{}), stop: stop}
	go func() {
		var stderr bytes.Buffer
		code, err := exec(ctx, engine.ExecSpec{
			Cmd:    []string{"node", "/usr/local/lib/deployer/relay.js", strconv.Itoa(gateway.RelayPort)},
			User:   relayUser,
			Stdin:  inR,
			Stdout: outW,
			Stderr: &limitWriter{w: &stderr, n: 64 << 10},
		})
		outW.Close()
		inR.Close()
		if err == nil && code != 0 {
			err = fmt.Errorf("the job's relay exited %d: %s", code, lastLine(stderr.String()))
		}
		l.err = err
		close(l.ended)
	}()
	go func() {
		if err := gateway.AwaitReady(l.out); err != nil {
			// It died, or speaks no relay: a job that took it sees it end.
			l.stop()
			return
		}
		close(l.listening)
		_ = gateway.Serve(ctx, l, l.out, l.in, make(chan struct{}))
		// A relay that speaks no more frames is of no use to anyone.
		l.stop()
	}()
	return l
}

// attach makes h answer, in ctx, the requests the relay reads from now on, until
// detach: it sends the relay a fence, and what was sent before the relay passes it
// back (an earlier job's requests, still on their way) is refused. waitRelay waits
// for the fence.
func (l *relayLink) attach(ctx context.Context, h gateway.Handler) {
	l.mu.Lock()
	l.fence++
	n := l.fence
	l.h, l.hctx, l.fenced = h, ctx, make(chan struct{})
	l.mu.Unlock()
	// A relay just started reads nothing yet: the job does not wait here for it.
	go func() {
		if err := gateway.WriteFence(l.in, n); err != nil {
			// The relay is gone: the job sees it end.
			l.stop()
		}
	}()
}

func (l *relayLink) detach() {
	l.mu.Lock()
	l.h, l.hctx = nil, nil
	l.mu.Unlock()
}

// Fenced hears the relay pass back fence n: the job attached with it answers from now on.
func (l *relayLink) Fenced(n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == l.fence && l.h != nil && !closed(l.fenced) {
		close(l.fenced)
	}
}

// Current is who answers the request read now.
func (l *relayLink) Current() gateway.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil || !closed(l.fenced) {
		return refused{}
	}
	return bound{h: l.h, ctx: l.hctx}
}

// Handle is Current's answer; Serve asks Current itself, as it reads a request.
func (l *relayLink) Handle(ctx context.Context, body []byte) []byte {
	return l.Current().Handle(ctx, body)
}

// bound answers with a job's gateway, in the job's ctx.
type bound struct {
	h   gateway.Handler
	ctx context.Context
}

func (b bound) Handle(_ context.Context, body []byte) []byte { return b.h.Handle(b.ctx, body) }

// refused answers a request no job of the container may send: one an ended job
// left behind, or one sent before the job's fence.
type refused struct{}

var noJob = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"no deployment is running in this container"}}`)

func (refused) Handle(context.Context, []byte) []byte { return noJob }

// alive says the relay still runs.
func (l *relayLink) alive() bool { return !closed(l.ended) }

// Close ends the relay: closing its input ends it.
func (l *relayLink) Close() error {
	l.in.Close()
	awaitEnd(l.ended, l.stop)
	return nil
}

// warmed is what Warmer readies in an idle container for its next job.
type warmed struct {
	relay *relayLink
	agent *agentProc
}

// Running says the container still runs: what was started there does (the pool
// asks, instead of the engine).
func (w *warmed) Running() bool { return w.relay.alive() && w.agent.alive() }

func (w *warmed) Close() error {
	_ = w.agent.Close()
	return w.relay.Close()
}

// Warmer is the pool's Warmer: in each container that comes back idle it starts the
// agent, and the relay unless the last job handed it back running, so that the next
// job finds both waiting instead of waiting for Node.js and for docker exec. Neither
// knows a job yet. A new relay is waited for until it listens (a new container, a
// spare): a job that comes meanwhile takes a container that is ready, or waits for one.
func Warmer(eng ContainerEngine) pool.Warmer {
	return func(ctx context.Context, id string, kept io.Closer) (io.Closer, error) {
		exec := func(ctx context.Context, spec engine.ExecSpec) (int, error) { return eng.Exec(ctx, id, spec) }
		link, ok := kept.(*relayLink)
		if !ok || !link.alive() {
			if kept != nil {
				_ = kept.Close()
			}
			link = launchRelay(exec)
		}
		w := &warmed{relay: link, agent: launchAgent(exec)}
		select {
		case <-link.listening:
		case <-link.ended:
		case <-ctx.Done():
			_ = w.Close()
			return nil, ctx.Err()
		}
		return w, nil
	}
}

// A managed chain's sender that has less than fundBelow is given fundTo: plenty for
// any deployment, and no one's to spend but its client's.
var (
	fundBelow = new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))
	fundTo    = new(big.Int).Mul(big.NewInt(10_000), big.NewInt(1e18))
)

// fund gives the job's sender ether on a managed chain, from the worker: the job
// itself cannot call anvil_setBalance.
func (j *job) fund(ctx context.Context) error {
	rpc := chains.NewRPC(j.chain.WorkerRPC, j.chain.Admin())
	var bal hexutil.Big
	if err := rpc.Call(ctx, "eth_getBalance", &bal, j.gw.Sender(), "latest"); err != nil {
		return fmt.Errorf("fund sender: %w", err)
	}
	if bal.ToInt().Cmp(fundBelow) >= 0 {
		return nil
	}
	if err := rpc.Call(ctx, "anvil_setBalance", nil, j.gw.Sender(), (*hexutil.Big)(fundTo)); err != nil {
		return fmt.Errorf("fund sender: %w", err)
	}
	return nil
}
