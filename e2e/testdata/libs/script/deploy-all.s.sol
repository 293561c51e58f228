// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Calc} from "../src/Calc.sol";
import {MockOracle} from "../test/mocks/MockOracle.sol";

interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

contract DeployAll {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external {
        vm.startBroadcast();
        new Calc();
        new MockOracle();
        vm.stopBroadcast();
    }
}
