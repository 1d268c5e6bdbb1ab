package run

import (
	"errors"
	"net/http"

	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Class says whether a failure is worth a retry.
type Class int

// Failure classes.
const (
	// Transient failures may go away by themselves (an outage, a timeout, throttling): the
	// handler returns an error so that Pub/Sub redelivers the event.
	Transient Class = iota
	// Permanent failures need a person (invalid configuration, a missing secret, a missing
	// permission): the handler logs them at ERROR and acknowledges the event.
	Permanent
)

func (c Class) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "transient"
}

type classified struct {
	class Class
	err   error
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

// Permanent marks err as a failure no retry can fix; nil stays nil.
func MarkPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &classified{class: Permanent, err: err}
}

// MarkTransient marks err as worth a retry; nil stays nil.
func MarkTransient(err error) error {
	if err == nil {
		return nil
	}
	return &classified{class: Transient, err: err}
}

// ClassOf decides whether err is worth a retry, in one place for every adapter:
//
//   - several failures joined (errors.Join) are worth a retry if any of them is;
//   - an explicit mark (MarkPermanent, MarkTransient) wins;
//   - gRPC codes (Secret Manager, Pub/Sub): UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL,
//     RESOURCE_EXHAUSTED, ABORTED and UNKNOWN are transient; NOT_FOUND, PERMISSION_DENIED,
//     UNAUTHENTICATED, INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, OUT_OF_RANGE and
//     UNIMPLEMENTED are permanent;
//   - HTTP statuses of Google JSON APIs (Cloud Storage): 408, 429 and 5xx are transient, other
//     4xx permanent;
//   - timeouts and network errors are transient;
//   - anything else is transient: a retry is bounded by the event's age limit, and a
//     failure nobody classified is more often an outage than a configuration mistake.
func ClassOf(err error) Class {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		// Several failures (one per instance): worth a retry if any of them is.
		class := Permanent
		for _, e := range j.Unwrap() {
			if e != nil && ClassOf(e) == Transient {
				class = Transient
			}
		}
		return class
	}
	var c *classified
	if errors.As(err, &c) {
		return c.class
	}
	if s, ok := grpcStatus(err); ok {
		return classOfCode(s.Code())
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ClassOfHTTP(ge.Code)
	}
	return Transient
}

// IsPermanent reports whether ClassOf(err) is Permanent.
func IsPermanent(err error) bool { return err != nil && ClassOf(err) == Permanent }

// ClassOfHTTP classifies an HTTP status.
func ClassOfHTTP(status int) Class {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return Transient
	case status >= 400:
		return Permanent
	}
	return Transient
}

func classOfCode(c codes.Code) Class {
	switch c {
	case codes.NotFound, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument,
		codes.FailedPrecondition, codes.AlreadyExists, codes.OutOfRange, codes.Unimplemented:
		return Permanent
	}
	return Transient
}

// grpcStatus finds a gRPC status in err's chain (the Google client libraries wrap it in their
// own error types, which implement GRPCStatus; status.FromError unwraps them).
func grpcStatus(err error) (*status.Status, bool) {
	s, ok := status.FromError(err)
	if !ok || s.Code() == codes.OK {
		return nil, false
	}
	return s, true
}
