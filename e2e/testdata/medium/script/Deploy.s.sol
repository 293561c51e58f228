// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Marker} from "./Marker.sol";

interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

// Computes for several seconds, then deploys one contract: a job that can be
// interrupted while it runs, and that completes when left alone.
contract Deploy {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (Marker m) {
        uint256 x;
        for (uint256 i = 0; i < 3000000; i++) {
            x += i;
        }
        vm.startBroadcast();
        m = new Marker(x);
        vm.stopBroadcast();
    }
}
