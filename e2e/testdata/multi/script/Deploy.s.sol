// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Counter} from "../src/Counter.sol";
import {Factory} from "../src/Factory.sol";

interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

// Deploys five contracts in four ways: two plain creations, one inside a constructor,
// one by a call, one through the CREATE2 factory.
contract Deploy {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external {
        vm.startBroadcast();
        new Counter(1);
        Factory f = new Factory();
        f.make(3);
        new Counter{salt: bytes32(uint256(5))}(2);
        vm.stopBroadcast();
    }
}
