// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Holder} from "../src/Holder.sol";

interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

// Takes its values as arguments, the way real deployment scripts take an owner or a
// salt: forge script --sig 'deploy(int256,uint256)' -- -5 7.
contract DeployWithArgs {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function deploy(int256 x, uint256 y) external {
        vm.startBroadcast();
        new Holder(x, y);
        vm.stopBroadcast();
    }
}
