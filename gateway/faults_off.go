//go:build !faulthooks

package gateway

// afterSend is a fault hook: test builds (-tags faulthooks) can kill the worker after
// a job's nth transaction, to test what a crash leaves. In every other build it does
// nothing.
func afterSend(int) {}
