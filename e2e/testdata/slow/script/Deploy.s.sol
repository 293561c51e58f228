// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Runs for a very long time, so that a test can cancel it.
contract Deploy {
    bool public IS_SCRIPT = true;

    function run() external pure returns (uint256 x) {
        for (uint256 i = 0; i < 10 ** 15; i++) {
            x += i;
        }
    }
}
