// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Token} from "../src/Token.sol";

interface Vm {
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256);
    function startBroadcast() external;
    function stopBroadcast() external;
}

// Reads its supply from the environment, with a default, as real scripts do.
contract Deploy {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (Token t) {
        uint256 supply = vm.envOr("INITIAL_SUPPLY", uint256(1000));
        vm.startBroadcast();
        t = new Token(msg.sender, supply);
        vm.stopBroadcast();
    }
}
