// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Old} from "../src/Old.sol";

interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

contract Deploy {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (Old o) {
        vm.startBroadcast();
        o = new Old();
        vm.stopBroadcast();
    }
}
