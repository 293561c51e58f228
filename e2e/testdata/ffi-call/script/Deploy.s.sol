// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface Vm {
    function ffi(string[] calldata) external returns (bytes memory);
}

// Tries to run a command on the deploying machine. The command prints a marker that
// its own text does not contain, so that the marker in the output means it ran.
contract Deploy {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external {
        string[] memory cmd = new string[](4);
        cmd[0] = "printf";
        cmd[1] = "F%sI_RAN";
        cmd[2] = "F";
        cmd[3] = "";
        vm.ffi(cmd);
    }
}
