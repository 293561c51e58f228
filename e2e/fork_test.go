package e2e

import (
	"context"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/chains"
)

// forkNetworks has an upstream chain (a managed anvil standing in for mainnet, since
// nothing else is reachable) and a fork of it, reached over the Docker network.
const forkNetworks = `{"networks": [
 {"name": "local", "type": "local", "chain_id": 31337, "port": 0},
 {"name": "upstream", "type": "local", "chain_id": 31340, "port": 0},
 {"name": "fork", "type": "fork", "chain_id": 31341, "port": 0, "fork_url_env": "E2E_FORK_URL"}
]}`

func TestForkSeesUpstreamAndKeepsItsOwnState(t *testing.T) {
	s := ownStack(t, stackOpts{networks: forkNetworks, env: []string{"E2E_FORK_URL=http://chain-upstream:8545"}})
	counter := func(network, initial string) api.DeployRequest {
		return api.DeployRequest{PathURL: "examples/counter", Network: network, Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{initial}}
	}
	// Deployed upstream before the fork starts, so the fork's block has it.
	up := s.deploy(t, counter("upstream", "11"))
	requireCompleted(t, up)
	fork := s.deploy(t, counter("fork", "22"))
	requireCompleted(t, fork)
	if fork.Result.ChainID != 31341 || fork.Result.RPCURL == up.Result.RPCURL {
		t.Fatalf("fork result %+v", fork.Result)
	}
	upAddr, forkAddr := up.Result.Contracts[0].Address, fork.Result.Contracts[0].Address
	if n := callUint(t, fork.Result.RPCURL, upAddr, "0x8381f58a"); n != 11 {
		t.Errorf("the upstream contract reads %d in the fork, want 11", n)
	}
	if n := callUint(t, fork.Result.RPCURL, forkAddr, "0x8381f58a"); n != 22 {
		t.Errorf("the fork's contract reads %d, want 22", n)
	}
	code, err := chains.NewRPC(up.Result.RPCURL, nil).Code(context.Background(), forkAddr)
	if err != nil {
		t.Fatal(err)
	}
	if len(code) > 2 {
		t.Errorf("the fork's deployment appears upstream at %s", forkAddr)
	}
}
