// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// A value only its deployer may set.
contract Owned {
    address public owner;
    uint256 public value;

    constructor() {
        owner = msg.sender;
    }

    function set(uint256 v) external {
        require(msg.sender == owner, "not the owner");
        value = v;
    }
}
