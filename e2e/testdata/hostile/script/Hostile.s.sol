// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Scripts that misbehave on purpose: each must be contained by the worker (its time
// limit, its output caps) and leave it healthy.

interface Vm {
    function sleep(uint256 milliseconds) external;
}

// console.log(string), without forge-std.
library Console {
    address private constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function log(string memory s) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string)", s));
        ok;
    }
}

// Sleeps for about thirty years.
contract Sleep {
    bool public IS_SCRIPT = true;
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external {
        vm.sleep(1e12);
    }
}

// Prints 200 000 lines.
contract Noisy {
    bool public IS_SCRIPT = true;

    function run() external view {
        for (uint256 i = 0; i < 200000; i++) {
            Console.log("a line of output from a noisy script, printed again and again");
        }
    }
}

// Prints one line of 8 MiB.
contract LongLine {
    bool public IS_SCRIPT = true;

    function run() external view {
        bytes memory b = new bytes(8 << 20);
        assembly {
            let p := add(b, 32)
            let end := add(p, mload(b))
            let word := 0x7878787878787878787878787878787878787878787878787878787878787878
            for {} lt(p, end) { p := add(p, 32) } { mstore(p, word) }
        }
        Console.log(string(b));
    }
}
