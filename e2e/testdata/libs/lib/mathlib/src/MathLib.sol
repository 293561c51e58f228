// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

/// Public functions: a contract using them calls a deployed library, which forge
/// deploys and links.
library MathLib {
    function add(uint256 a, uint256 b) public pure returns (uint256) {
        return a + b;
    }
}
