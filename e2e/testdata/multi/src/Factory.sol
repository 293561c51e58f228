// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Counter} from "./Counter.sol";

contract Factory {
    Counter public child;
    constructor() {
        child = new Counter(7);
    }
    function make(uint256 n) external returns (Counter) {
        return new Counter(n);
    }
}
