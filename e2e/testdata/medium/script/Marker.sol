// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

contract Marker {
    uint256 public value;

    constructor(uint256 v) {
        value = v;
    }
}
