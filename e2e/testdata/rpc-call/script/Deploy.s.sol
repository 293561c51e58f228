// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface Vm {
    function rpc(string calldata method, string calldata params) external returns (bytes memory);
    function startBroadcast() external;
    function stopBroadcast() external;
}

contract Marker {}

// What a hostile script tries: calling the chain's admin methods through its RPC
// (vm.rpc goes to the script's --rpc-url), then deploying as if nothing happened.
contract Deploy {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run(string calldata method, string calldata params) external {
        vm.rpc(method, params);
        vm.startBroadcast();
        new Marker();
        vm.stopBroadcast();
    }
}
