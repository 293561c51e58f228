// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Keeps what its deployer was given.
contract Holder {
    int256 public x;
    uint256 public y;

    constructor(int256 x_, uint256 y_) {
        x = x_;
        y = y_;
    }
}
