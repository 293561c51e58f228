package compilecache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Key names what a compilation makes: the project's content as the job sees it (its
// content hash, taken with the sanitized config the job gets), the runner image
// (forge, the compiler and its stand-in) and the build command. Anything that could
// change the output changes the key, so a hit never serves stale artifacts.
func Key(content, imageKey string, command []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "compile v1\ncontent %s\nimage %s\ncommand %q\n", content, imageKey, command)
	return hex.EncodeToString(h.Sum(nil))
}
