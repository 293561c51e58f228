package gateway

// The methods a deployment needs, learned by recording what forge (script, create)
// and Hardhat Ignition call: forwarded to the chain as they are. They read the
// chain, or estimate, and change nothing. Everything else is refused with an error
// naming the method: the chain's admin methods (anvil_*, evm_*, hardhat_* but
// metadata), tracing, filters and subscriptions (shared chain state), txpool, and
// signing methods the job has no key for. anvil_nodeInfo is refused too: on a fork
// it hands out the upstream URL with its key; forge deploys without it.
//
// eth_accounts, eth_sendTransaction and eth_sendRawTransaction are answered by the
// gateway itself (gateway.go, send.go).
var forwarded = map[string]bool{
	"eth_chainId":                             true,
	"net_version":                             true,
	"net_listening":                           true,
	"web3_clientVersion":                      true,
	"eth_syncing":                             true,
	"eth_blockNumber":                         true,
	"eth_getBalance":                          true,
	"eth_getCode":                             true,
	"eth_getStorageAt":                        true,
	"eth_getTransactionCount":                 true,
	"eth_getAccountInfo":                      true,
	"eth_getProof":                            true,
	"eth_call":                                true,
	"eth_estimateGas":                         true,
	"eth_createAccessList":                    true,
	"eth_gasPrice":                            true,
	"eth_maxPriorityFeePerGas":                true,
	"eth_blobBaseFee":                         true,
	"eth_feeHistory":                          true,
	"eth_getBlockByNumber":                    true,
	"eth_getBlockByHash":                      true,
	"eth_getBlockReceipts":                    true,
	"eth_getBlockTransactionCountByNumber":    true,
	"eth_getBlockTransactionCountByHash":      true,
	"eth_getTransactionByHash":                true,
	"eth_getTransactionByBlockHashAndIndex":   true,
	"eth_getTransactionByBlockNumberAndIndex": true,
	"eth_getTransactionReceipt":               true,
	"eth_getLogs":                             true,
	"hardhat_metadata":                        true,
	// Read-only: Ignition asks whether the chain mines each transaction at once, and
	// if it does, does not wait for confirmations that would never come.
	"hardhat_getAutomine": true,
}

// Forwarded says the gateway passes the method to the chain as it is.
func Forwarded(method string) bool { return forwarded[method] }

// PublicMethods are what the chain's published RPC (the rpc_url users get) serves:
// the reads a job may make, and raw transactions, which their senders signed.
func PublicMethods() []string {
	out := make([]string, 0, len(forwarded)+1)
	for m := range forwarded {
		out = append(out, m)
	}
	return append(out, "eth_sendRawTransaction")
}
