// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Owned} from "../src/Owned.sol";

interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

contract Deploy {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (Owned o) {
        vm.startBroadcast();
        o = new Owned();
        vm.stopBroadcast();
    }
}
