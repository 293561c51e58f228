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
// gateway). It is opened when the job has its container and chain, and its relay
// runs in the container while the job's commands run.

// relay is the gateway's end in a job's container: `node relay.js`, run with
// docker exec, its standard input and output carrying the requests.
type relay struct {
	// in is the relay's standard input: closing it ends the relay.
	in    *io.PipeWriter
	ready chan struct{}
	// done has the exec's end: nil, or why the relay could not run.
	done chan error
}

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

// startRelay starts the relay in the job's container and serves the gateway to it;
// it does not wait for the relay to listen (waitRelay does).
func (j *job) startRelay(ctx context.Context) {
	p, warm := j.box.c.TakeWarm().(*relayProc)
	if warm && !p.alive() {
		_ = p.Close()
		warm = false
	}
	r := &relay{ready: make(chan struct{})}
	if warm {
		// Started while the container idled: listening already, or soon.
		go func() {
			select {
			case <-p.listening:
			case <-ctx.Done():
				return
			}
			close(r.ready)
			_ = gateway.Serve(ctx, j.gw, p.out, p.in, make(chan struct{}))
		}()
	} else {
		p = launchRelay(ctx, j.box.c.Exec)
		go func() { _ = gateway.Serve(ctx, j.gw, p.out, p.in, r.ready) }()
	}
	r.in, r.done = p.in, p.done
	j.relay = r
}

// relayProc is a relay process in a job container.
type relayProc struct {
	// in is its standard input (the gateway's answers; closing it ends the relay),
	// out its standard output (the requests).
	in  *io.PipeWriter
	out *bufio.Reader
	// done has the exec's end: nil, or why the relay could not run.
	done chan error
	// stop ends the exec of a relay started ahead of its job, and listening is
	// closed once it listens.
	stop      context.CancelFunc
	listening chan struct{}
}

// launchRelay starts the relay with exec, which runs a command in the container.
func launchRelay(ctx context.Context, exec func(context.Context, engine.ExecSpec) (int, error)) *relayProc {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &relayProc{in: inW, out: bufio.NewReaderSize(outR, 64<<10), done: make(chan error, 1)}
	go func() {
		var stderr bytes.Buffer
		code, err := exec(ctx, engine.ExecSpec{
			Cmd:    []string{"node", "/usr/local/lib/deployer/relay.js", strconv.Itoa(gateway.RelayPort)},
			User:   jobUser,
			Stdin:  inR,
			Stdout: outW,
			Stderr: &limitWriter{w: &stderr, n: 64 << 10},
		})
		outW.Close()
		inR.Close()
		if err == nil && code != 0 {
			err = fmt.Errorf("the job's relay exited %d: %s", code, lastLine(stderr.String()))
		}
		p.done <- err
	}()
	return p
}

// alive says the relay still runs.
func (p *relayProc) alive() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// Close ends a relay that no job took.
func (p *relayProc) Close() error {
	p.in.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		if p.stop != nil {
			p.stop()
		}
	}
	return nil
}

// RelayWarmer is the pool's Warmer: it starts the relay in each container that
// comes back idle, so that the next job finds it listening instead of waiting for
// Node.js to start. The relay is the same for every job (the gateway behind it is
// the job's): it listens on the container's loopback and forwards, nothing more.
// It does not wait for the relay to listen: the container is idle at once, and a job
// that takes it at once waits for what is left of the start.
func RelayWarmer(eng ContainerEngine) pool.Warmer {
	return func(_ context.Context, id string) (io.Closer, error) {
		rctx, cancel := context.WithCancel(context.Background())
		p := launchRelay(rctx, func(ctx context.Context, spec engine.ExecSpec) (int, error) { return eng.Exec(ctx, id, spec) })
		p.stop, p.listening = cancel, make(chan struct{})
		go func() {
			if err := gateway.AwaitReady(p.out); err != nil {
				// It died, or speaks no relay: a job that took it sees it end.
				_ = p.Close()
				return
			}
			close(p.listening)
		}()
		return p, nil
	}
}

// waitRelay waits until the relay listens.
func (j *job) waitRelay(ctx context.Context) error {
	start := time.Now()
	defer func() { j.relayWait = time.Since(start) }()
	select {
	case <-j.relay.ready:
		return nil
	case err := <-j.relay.done:
		j.box.broken = true
		if err == nil {
			err = fmt.Errorf("the job's relay ended before it listened")
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopRelay ends the relay and waits for it, so that the container's reset finds
// none of the job's processes.
func (j *job) stopRelay() {
	if j.relay == nil {
		return
	}
	j.relay.in.Close()
	select {
	case <-j.relay.done:
	case <-time.After(10 * time.Second):
		// Its reset kills it, or the container goes.
		j.box.broken = true
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
