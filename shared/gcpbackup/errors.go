package gcpbackup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/protobuf/proto"
)

// API names one of the three Google APIs.
type API string

// The APIs this package reads.
const (
	APISQLAdmin  API = "sqladmin"
	APIStorage   API = "storage"
	APIGKEBackup API = "gkebackup"
	APIContainer API = "container"
)

// Kind says what went wrong with a request, independently of the client library.
type Kind int

// Kinds of failure.
const (
	// KindOther is any failure not listed below (e.g. 400 Bad Request).
	KindOther Kind = iota
	// KindSetup: the client could not be created (bad endpoint, no credentials).
	KindSetup
	// KindUnauthenticated: 401, the credentials were refused.
	KindUnauthenticated
	// KindPermissionDenied: 403, the caller lacks an IAM permission.
	KindPermissionDenied
	// KindNotFound: 404, the resource does not exist.
	KindNotFound
	// KindUnavailable: 5xx, 429 or a connection failure.
	KindUnavailable
	// KindTimeout: no answer in time.
	KindTimeout
	// KindMalformed: the answer could not be decoded or made no sense.
	KindMalformed
	// KindConflict: 409, the resource already exists (or is being changed).
	KindConflict
	// KindRefused: this package refused to send the request (an instance name outside
	// DrillPrefix); nothing was sent.
	KindRefused
)

func (k Kind) String() string {
	switch k {
	case KindSetup:
		return "client setup failed"
	case KindUnauthenticated:
		return "unauthenticated"
	case KindPermissionDenied:
		return "permission denied"
	case KindNotFound:
		return "not found"
	case KindUnavailable:
		return "service error"
	case KindTimeout:
		return "timeout"
	case KindMalformed:
		return "malformed answer"
	case KindConflict:
		return "conflict"
	case KindRefused:
		return "refused"
	default:
		return "error"
	}
}

// Error is every error returned by Client methods.
type Error struct {
	API      API
	Op       string // e.g. "instances.get", "buckets.get", "backups.list"
	Resource string // e.g. "projects/p/instances/i", "b/media", "projects/p/locations/l/backupPlans/x"
	Kind     Kind
	Code     int    // HTTP status code, 0 when there was no HTTP answer
	Message  string // short explanation, from the server when it gave one
	Attempts int    // how many times the request was sent
	Err      error  // underlying error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: %s", e.API, e.Op, e.Resource, e.Kind)
	if e.Code != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) retryable() bool {
	switch e.Code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// KindOf classifies any error: the Kind of an *Error in its chain, or a best guess.
func KindOf(err error) Kind {
	if err == nil {
		return KindOther
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return classify("", "", "", err).Kind
}

// classify maps a client library error to an *Error.
func classify(api API, op, resource string, err error) *Error {
	e := &Error{API: api, Op: op, Resource: resource, Err: err}
	var ge *googleapi.Error
	var me *malformedError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var ne net.Error
	var ue *url.Error
	var pe *time.ParseError
	switch {
	case errors.As(err, &me):
		e.Kind, e.Message = KindMalformed, short(err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindTimeout
	case errors.Is(err, context.Canceled):
		e.Kind, e.Message = KindOther, "canceled"
	case errors.Is(err, storage.ErrBucketNotExist):
		e.Kind, e.Code, e.Message = KindNotFound, http.StatusNotFound, "the bucket does not exist"
	case errors.As(err, &ge):
		e.Code = ge.Code
		e.Message = serverMessage(ge)
		switch {
		case ge.Code == http.StatusUnauthorized:
			e.Kind = KindUnauthenticated
		case ge.Code == http.StatusForbidden:
			e.Kind = KindPermissionDenied
		case ge.Code == http.StatusNotFound:
			e.Kind = KindNotFound
		case ge.Code == http.StatusConflict:
			e.Kind = KindConflict
		case ge.Code == http.StatusTooManyRequests || ge.Code >= 500:
			e.Kind = KindUnavailable
		default:
			e.Kind = KindOther
		}
	case errors.As(err, &syn), errors.As(err, &typ), errors.As(err, &pe), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF), errors.Is(err, proto.Error):
		e.Kind, e.Message = KindMalformed, short(err.Error())
	case errors.As(err, &ne) && ne.Timeout():
		e.Kind = KindTimeout
	case errors.As(err, &ue), errors.As(err, &ne):
		e.Kind, e.Message = KindUnavailable, short(err.Error())
	default:
		e.Kind, e.Message = KindOther, short(err.Error())
	}
	return e
}

// serverMessage extracts the human-readable message of a Google API error.
func serverMessage(ge *googleapi.Error) string {
	if ge.Message != "" {
		return short(ge.Message)
	}
	for _, it := range ge.Errors {
		if it.Message != "" {
			return short(it.Message)
		}
	}
	if t := http.StatusText(ge.Code); t != "" {
		return t
	}
	return short(ge.Body)
}

// short trims a message to one line of reasonable length.
func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 300
	if len(s) <= max {
		return s
	}
	cut := 0
	for i := range s {
		if i > max {
			break
		}
		cut = i
	}
	return s[:cut] + "…"
}
