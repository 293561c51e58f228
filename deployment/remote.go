package deployment

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/gateway"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/networks"
)

// A deployment to a real network (type remote) differs from one to a managed chain:
// the chain is someone else's, at the network's RPC URL (which may hold a key, and is
// shown masked); the network's own key signs; nothing is sent before the chain id is
// checked and the sender is shown able to pay; every transaction is journaled before
// it is sent, so that a retried job never sends the deployment twice; and contracts
// are reported once their transactions have the network's confirmations.

// Journals hands out jobs' journals of sent transactions (gateway.JobJournal).
type Journals interface {
	Job(jobID string) *gateway.JobJournal
}

func (j *job) remote() bool { return !j.proj.plan.Network.Managed() }

// remoteChain checks the network answers with its chain id before anything is sent.
func (j *job) remoteChain(ctx context.Context) error {
	net := j.proj.plan.Network
	return j.step(ctx, "connecting to "+net.Name, j.d.cfg.Steps.Chain, func(ctx context.Context) error {
		id, err := chains.NewRPC(net.RPCURL(), nil).ChainID(ctx)
		if err != nil {
			return fmt.Errorf("network %s: %w", net.Name, err)
		}
		if id != net.ChainID {
			return userErrorf("network %q answers as chain %d, not %d as network.json says: nothing was sent", net.Name, id, net.ChainID)
		}
		j.chain = &chains.Chain{Network: net, WorkerRPC: net.RPCURL(), PublicRPC: networks.MaskURL(net.RPCURL())}
		return nil
	})
}

// checkFunds runs the script without sending anything and compares what forge
// estimates it costs with what the sender has.
func (j *job) checkFunds(ctx context.Context, sender string) error {
	if !j.proj.plan.Target.IsScript() {
		// forge create sends one transaction: the gateway checks it before signing.
		return nil
	}
	j.rep.Step("estimating the cost on " + j.proj.plan.Network.Name)
	j.gw.Simulate(true)
	defer j.gw.Simulate(false)
	out := newOutput(j.rep, j.d.Redact)
	err := j.users.run(ctx, "estimating the cost", func(ctx context.Context) error {
		code, err := j.box.forgeExec(ctx, foundry.SimulateCommand(j.proj.plan.Target, gateway.RelayURL, sender), out)
		if err != nil {
			return err
		}
		if code != 0 {
			if msg := foundry.CompileError(out.String()); msg != "" {
				return userErrorf("%s", msg)
			}
			return userErrorf("the dry run failed, nothing was sent: %s", orDefault(foundry.FailureSummary(out.String()), "forge exited "+strconv.Itoa(code)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	need, ok := foundry.EstimatedCost(out.String())
	if !ok {
		return nil
	}
	var bal hexutil.Big
	if err := gateway.NewUpstream(j.chain.WorkerRPC, nil).Call(ctx, &bal, "eth_getBalance", sender, "latest"); err != nil {
		return err
	}
	if bal.ToInt().Cmp(need) < 0 {
		return userErrorf("the sender %s cannot pay for this deployment: it has %s wei, forge estimates %s wei; nothing was sent", sender, bal.ToInt(), need)
	}
	return nil
}

// waitConfirmed waits until every transaction the job sent is mined with the
// network's confirmations. One still unmined past the step's limit fails the job,
// listing what was sent.
func (j *job) waitConfirmed(ctx context.Context, sent []gateway.Sent) error {
	net := j.proj.plan.Network
	if len(sent) == 0 {
		return nil
	}
	rpc := chains.NewRPC(j.chain.WorkerRPC, nil)
	name := fmt.Sprintf("waiting for %d confirmation(s) on %s", net.Confirmations, net.Name)
	err := j.step(ctx, name, j.d.cfg.Steps.Mine, func(ctx context.Context) error {
		for {
			var highest uint64
			mined := 0
			for _, s := range sent {
				rc, err := rpc.Receipt(ctx, s.Hash)
				if err != nil {
					return err
				}
				if rc == nil {
					break
				}
				mined++
				if n, err := hexutil.DecodeUint64(rc.BlockNumber); err == nil && n > highest {
					highest = n
				}
			}
			if mined == len(sent) {
				var head hexutil.Uint64
				if err := rpc.Call(ctx, "eth_blockNumber", &head); err != nil {
					return err
				}
				if uint64(head)+1 >= highest+net.Confirmations {
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	})
	if te, ok := err.(*TimeoutError); ok {
		return userErrorf("%s; the transactions sent: %s", te.Error(), hashes(sent))
	}
	return err
}

// recoverJournal ends a job whose earlier attempt sent transactions (its worker
// died): the script is not run again, since a new run would pick new nonces and
// addresses and deploy twice. What was journaled and is not on chain is sent again
// as it was signed; then, if the script had ended, the job completes with what it
// made, else it fails, listing what was sent.
func (j *job) recoverJournal(ctx context.Context, txs []gateway.Sent, done json.RawMessage) error {
	net := j.proj.plan.Network
	j.rep.Step("recovering the transactions an earlier attempt sent")
	up := gateway.NewUpstream(j.chain.WorkerRPC, nil)
	rpc := chains.NewRPC(j.chain.WorkerRPC, nil)
	for _, tx := range txs {
		rc, err := rpc.Receipt(ctx, tx.Hash)
		if err != nil {
			return err
		}
		if rc == nil && tx.Raw != "" {
			// The same signed bytes: the same hash, never a second transaction. The
			// chain may know it already.
			if _, err := up.Forward(ctx, "eth_sendRawTransaction", json.RawMessage(`["`+tx.Raw+`"]`)); err != nil {
				j.log.Info("resending a journaled transaction", "hash", tx.Hash, "answer", err)
			}
		}
	}
	if err := j.waitConfirmed(ctx, txs); err != nil {
		return err
	}
	if done == nil {
		return userErrorf("the worker running this deployment to %s stopped after sending %d transaction(s): %s. They are on chain; the script was not run again, since a new run would deploy anew. Check them, and deploy again if needed", net.Name, len(txs), hashes(txs))
	}
	var made foundry.Broadcast
	if err := json.Unmarshal(done, &made); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	made.TxHashes = nil
	for _, tx := range txs {
		made.TxHashes = append(made.TxHashes, strings.ToLower(tx.Hash))
	}
	contracts, err := confirm(ctx, rpc, made, j.log)
	if err != nil {
		return err
	}
	j.result(contracts, strings.ToLower(j.gw.Sender().Hex()))
	return nil
}

// hashes lists transactions' hashes for a message.
func hashes(sent []gateway.Sent) string {
	out := make([]string, len(sent))
	for i, s := range sent {
		out[i] = s.Hash
	}
	return strings.Join(out, ", ")
}

// result records a completed deployment's result.
func (j *job) result(contracts []jobs.Contract, sender string) {
	if contracts == nil {
		contracts = []jobs.Contract{}
	}
	net := j.proj.plan.Network
	j.r.Result = &jobs.Result{ChainID: net.ChainID, RPCURL: j.chain.PublicRPC, Sender: sender, Client: j.p.Client, Contracts: contracts}
}
