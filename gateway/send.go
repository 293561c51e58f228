package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// txArgs is eth_sendTransaction's object, as forge and Hardhat fill it.
type txArgs struct {
	From                 *common.Address   `json:"from"`
	To                   *common.Address   `json:"to"`
	Gas                  *hexutil.Uint64   `json:"gas"`
	GasPrice             *hexutil.Big      `json:"gasPrice"`
	MaxFeePerGas         *hexutil.Big      `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *hexutil.Big      `json:"maxPriorityFeePerGas"`
	Value                *hexutil.Big      `json:"value"`
	Nonce                *hexutil.Uint64   `json:"nonce"`
	Data                 *hexutil.Bytes    `json:"data"`
	Input                *hexutil.Bytes    `json:"input"`
	ChainID              *hexutil.Big      `json:"chainId"`
	AccessList           *types.AccessList `json:"accessList"`
}

func refused(format string, args ...any) error {
	return &rpcError{Code: codeServer, Message: fmt.Sprintf(format, args...)}
}

// sendTransaction signs a transaction of the job's sender as given (forge chose its
// nonce, gas and fees, and computed addresses from them: nothing is rewritten, only
// what is missing is filled in), records it, and sends it raw. It is never forwarded
// as eth_sendTransaction: a chain with unlocked accounts would sign it for anyone.
func (s *Session) sendTransaction(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	var args []txArgs
	if err := json.Unmarshal(params, &args); err != nil || len(args) != 1 {
		return nil, &rpcError{Code: codeParams, Message: "eth_sendTransaction takes one transaction object"}
	}
	a := args[0]
	if a.From != nil && *a.From != s.sender {
		return nil, refused("only the job's sender %s can send through the gateway, not %s", strings.ToLower(s.sender.Hex()), strings.ToLower(a.From.Hex()))
	}
	if a.ChainID != nil && a.ChainID.ToInt().Uint64() != s.cfg.ChainID {
		return nil, refused("chain id %s, but this chain is %d", a.ChainID.ToInt(), s.cfg.ChainID)
	}
	if s.simulating() {
		return nil, refused("a dry run sends nothing")
	}
	tx, err := s.fill(ctx, a)
	if err != nil {
		return nil, err
	}
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(new(big.Int).SetUint64(s.cfg.ChainID)), s.cfg.Key)
	if err != nil {
		return nil, refused("sign: %v", err)
	}
	return s.send(ctx, signed, s.sender, true)
}

// fill completes a transaction with what the job left out, and checks it against the
// job's caps and the sender's means.
func (s *Session) fill(ctx context.Context, a txArgs) (*types.Transaction, error) {
	up := s.cfg.Upstream
	var nonce uint64
	if a.Nonce != nil {
		nonce = uint64(*a.Nonce)
	} else {
		var n hexutil.Uint64
		if err := up.Call(ctx, &n, "eth_getTransactionCount", s.sender, "pending"); err != nil {
			return nil, err
		}
		nonce = uint64(n)
	}
	data := []byte{}
	if a.Input != nil {
		data = *a.Input
	} else if a.Data != nil {
		data = *a.Data
	}
	value := new(big.Int)
	if a.Value != nil {
		value = a.Value.ToInt()
	}
	var gas uint64
	if a.Gas != nil {
		gas = uint64(*a.Gas)
	} else {
		call := map[string]any{"from": s.sender, "value": (*hexutil.Big)(value), "input": hexutil.Bytes(data)}
		if a.To != nil {
			call["to"] = a.To
		}
		var g hexutil.Uint64
		if err := up.Call(ctx, &g, "eth_estimateGas", call); err != nil {
			return nil, err
		}
		gas = uint64(g)
	}
	chainID := new(big.Int).SetUint64(s.cfg.ChainID)
	var tx *types.Transaction
	var feeCap *big.Int
	switch {
	case a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil:
		feeCap = new(big.Int)
		if a.MaxFeePerGas != nil {
			feeCap = a.MaxFeePerGas.ToInt()
		}
		tip := new(big.Int)
		if a.MaxPriorityFeePerGas != nil {
			tip = a.MaxPriorityFeePerGas.ToInt()
		}
		if a.MaxFeePerGas == nil {
			var price hexutil.Big
			if err := up.Call(ctx, &price, "eth_gasPrice"); err != nil {
				return nil, err
			}
			feeCap = new(big.Int).Add(new(big.Int).Mul(price.ToInt(), big.NewInt(2)), tip)
		}
		dyn := &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: a.To, Value: value, Data: data}
		if a.AccessList != nil {
			dyn.AccessList = *a.AccessList
		}
		tx = types.NewTx(dyn)
	default:
		if a.GasPrice != nil {
			feeCap = a.GasPrice.ToInt()
		} else {
			var price hexutil.Big
			if err := up.Call(ctx, &price, "eth_gasPrice"); err != nil {
				return nil, err
			}
			feeCap = price.ToInt()
		}
		if a.AccessList != nil {
			tx = types.NewTx(&types.AccessListTx{ChainID: chainID, Nonce: nonce, GasPrice: feeCap, Gas: gas, To: a.To, Value: value, Data: data, AccessList: *a.AccessList})
		} else {
			tx = types.NewTx(&types.LegacyTx{Nonce: nonce, GasPrice: feeCap, Gas: gas, To: a.To, Value: value, Data: data})
		}
	}
	cost := new(big.Int).Add(new(big.Int).Mul(new(big.Int).SetUint64(gas), feeCap), value)
	if err := s.charge(ctx, value, cost); err != nil {
		return nil, err
	}
	return tx, nil
}

// charge counts a transaction's most it can cost against the job's caps and, on a
// real network, the sender's balance.
func (s *Session) charge(ctx context.Context, value, cost *big.Int) error {
	if s.cfg.MaxValue != nil && value.Cmp(s.cfg.MaxValue) > 0 {
		return refused("a transaction's value of %s wei is over this network's cap of %s wei per transaction", value, s.cfg.MaxValue)
	}
	s.mu.Lock()
	total := new(big.Int).Add(s.spent, cost)
	s.mu.Unlock()
	if s.cfg.MaxSpend != nil && total.Cmp(s.cfg.MaxSpend) > 0 {
		return refused("the job would spend up to %s wei, over this network's cap of %s wei per job", total, s.cfg.MaxSpend)
	}
	if s.cfg.Remote {
		var bal hexutil.Big
		if err := s.cfg.Upstream.Call(ctx, &bal, "eth_getBalance", s.sender, "pending"); err != nil {
			return err
		}
		if bal.ToInt().Cmp(cost) < 0 {
			return refused("the sender %s cannot pay: balance %s wei, the transaction may cost %s wei", strings.ToLower(s.sender.Hex()), bal.ToInt(), cost)
		}
	}
	s.mu.Lock()
	s.spent.Add(s.spent, cost)
	s.mu.Unlock()
	return nil
}

// sendRawTransaction passes on a transaction the job signed itself: on a managed
// chain, from any address (scripts that use anvil's well-known keys), after taking
// that address's lock; on a real network, only from the job's sender.
func (s *Session) sendRawTransaction(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	var args []hexutil.Bytes
	if err := json.Unmarshal(params, &args); err != nil || len(args) != 1 {
		return nil, &rpcError{Code: codeParams, Message: "eth_sendRawTransaction takes one signed transaction"}
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(args[0]); err != nil {
		return nil, &rpcError{Code: codeParams, Message: "not a signed transaction: " + err.Error()}
	}
	if !tx.Protected() || tx.ChainId().Uint64() != s.cfg.ChainID {
		return nil, refused("a transaction for chain %d is refused: it must be signed for chain %d", tx.ChainId(), s.cfg.ChainID)
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		return nil, &rpcError{Code: codeParams, Message: "bad signature: " + err.Error()}
	}
	if s.simulating() {
		return nil, refused("a dry run sends nothing")
	}
	if s.cfg.Remote && from != s.sender {
		return nil, refused("on this network only the configured sender %s may send, not %s", strings.ToLower(s.sender.Hex()), strings.ToLower(from.Hex()))
	}
	if from != s.sender && s.cfg.ClaimRaw != nil {
		s.mu.Lock()
		claimed := s.claimed[from]
		s.mu.Unlock()
		if !claimed {
			if err := s.cfg.ClaimRaw(ctx, from); err != nil {
				return nil, refused("sender %s is busy with another deployment: %v", strings.ToLower(from.Hex()), err)
			}
			s.mu.Lock()
			s.claimed[from] = true
			s.mu.Unlock()
		}
	}
	if from == s.sender {
		if err := s.charge(ctx, tx.Value(), tx.Cost()); err != nil {
			return nil, err
		}
	}
	return s.send(ctx, tx, from, from == s.sender)
}

// send records a signed transaction and sends it raw. Transactions of the sender are
// journaled first: after a crash, what was journaled is sent again, never simulated
// again. Sends go one at a time, in the order they came, so that the journal's order
// is the order the chain saw (a few milliseconds each).
func (s *Session) send(ctx context.Context, tx *types.Transaction, from common.Address, journal bool) (json.RawMessage, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	raw, err := tx.MarshalBinary()
	if err != nil {
		return nil, refused("encode: %v", err)
	}
	rec := Sent{Hash: tx.Hash().Hex(), From: strings.ToLower(from.Hex()), Nonce: tx.Nonce()}
	if journal && s.cfg.Journal != nil {
		withRaw := rec
		withRaw.Raw = hexutil.Encode(raw)
		if err := s.cfg.Journal.Record(ctx, withRaw); err != nil {
			return nil, refused("the transaction could not be journaled, so it was not sent: %v", err)
		}
	}
	result, err := s.cfg.Upstream.Forward(ctx, "eth_sendRawTransaction", mustJSON([]string{hexutil.Encode(raw)}))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.sent = append(s.sent, rec)
	n := len(s.sent)
	s.mu.Unlock()
	s.cfg.Log.Debug("gateway sent a transaction", "hash", rec.Hash, "from", rec.From, "nonce", rec.Nonce)
	afterSend(n)
	return result, nil
}
