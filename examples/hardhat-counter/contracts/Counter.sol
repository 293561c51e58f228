// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// A counter anyone can increment.
contract Counter {
    uint256 public x;

    event Increment(uint256 by);

    constructor(uint256 start) {
        x = start;
    }

    function inc() public {
        x++;
        emit Increment(1);
    }
}
