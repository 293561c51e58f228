// SPDX-License-Identifier: MIT
pragma solidity =0.8.24;

// Pinned to another version than Old: the project compiles with both.
contract Newer {
    uint256 public made = 24;
}
