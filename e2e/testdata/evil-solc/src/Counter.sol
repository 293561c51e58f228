// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// A counter anyone can increment.
contract Counter {
    uint256 public number;

    event Incremented(uint256 number);

    constructor(uint256 initial) {
        number = initial;
    }

    function increment() external {
        number += 1;
        emit Incremented(number);
    }
}
