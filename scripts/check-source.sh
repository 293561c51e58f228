#!/usr/bin/env bash
# Fails when the repository tracks what is not source: a file over 2 MB, or an
# executable that is not a script (a compiled binary, a fetched tool). Set-up fetches
# the toolchain and the build writes to bin/; neither belongs in git.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r -d '' f; do
	[ -f "$f" ] || continue
	size=$(stat -c %s "$f")
	if [ "$size" -gt $((2 * 1024 * 1024)) ]; then
		echo "tracked file over 2 MB: $f ($size bytes)"
		bad=1
	fi
	magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
	if [ "$magic" = 7f454c46 ]; then
		echo "tracked binary: $f"
		bad=1
	elif [ -x "$f" ] && [ "$(head -c 2 "$f")" != '#!' ]; then
		echo "tracked executable that is not a script: $f"
		bad=1
	fi
done < <(git ls-files -z)
exit $bad
