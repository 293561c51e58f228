// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Owned} from "../src/Owned.sol";

interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

// Manages an Owned deployed earlier: only its owner's deployments may.
contract Set {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run(address target, uint256 v) external {
        vm.startBroadcast();
        Owned(target).set(v);
        vm.stopBroadcast();
    }
}
