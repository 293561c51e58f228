// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {MathLib} from "mathlib/MathLib.sol";

contract Calc {
    function sum(uint256 a, uint256 b) external pure returns (uint256) {
        return MathLib.add(a, b);
    }
}
