package deployment

import (
	"errors"
	"fmt"
)

// UserError is a failure caused by what the user submitted (a compile error, a
// refused project, a reverted script). Retrying does not help; its message is written
// for the user and holds no secret.
type UserError struct {
	Msg string
}

func (e *UserError) Error() string { return e.Msg }

func userErrorf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// IsUserError says err is the user's to fix.
func IsUserError(err error) bool {
	var u *UserError
	return errors.As(err, &u)
}
