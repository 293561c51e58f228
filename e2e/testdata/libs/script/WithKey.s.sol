// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {MockOracle} from "../test/mocks/MockOracle.sol";

interface Vm {
    function envUint(string calldata name) external view returns (uint256);
    function startBroadcast(uint256 privateKey) external;
    function stopBroadcast() external;
}

// What many scripts do elsewhere: sign with a key from the environment.
contract WithKey {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external {
        vm.startBroadcast(vm.envUint("PRIVATE_KEY"));
        new MockOracle();
        vm.stopBroadcast();
    }
}
