package compilecache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Key names what a compilation makes: the project's content as the job sees it (its
// content hash, taken with the sanitized config the job gets), the runner image
// (forge and the compiler's stand-in), the compiler versions offered, and the build
// command. Anything that could change the output changes the key, so a hit never
// serves stale artifacts: a newly fetched compiler gives a new key.
func Key(content, imageKey string, compilers, command []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "compile v2\ncontent %s\nimage %s\nsolc %q\ncommand %q\n", content, imageKey, compilers, command)
	return hex.EncodeToString(h.Sum(nil))
}
