package mastosim

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"
)

// FaultKind selects what an injected fault does to a request.
type FaultKind int

const (
	// FaultTooManyRequests answers 429 like Rack::Attack's throttled_responder: X-RateLimit-Limit
	// (the token's per-token limit, or 300), X-RateLimit-Remaining 0, X-RateLimit-Reset at the end
	// of the current 5-minute window, body {"error":"Too many requests"}.
	FaultTooManyRequests FaultKind = iota + 1
	// FaultServerError answers Fault.Status (500 default; 502, 503 or 504) with a JSON error body.
	FaultServerError
	// FaultTimeout hangs until the client gives up (r.Context() is done) and sends nothing.
	// ClearFaults releases hanging requests by closing their connections.
	FaultTimeout
	// FaultDrop hijacks and closes the TCP connection without a response. It needs a real
	// connection (httptest.NewServer); under a ResponseRecorder it panics with
	// http.ErrAbortHandler. Note that Go's http.Transport transparently retries idempotent
	// requests once when a reused keep-alive connection is closed before any response byte.
	FaultDrop
)

func (k FaultKind) String() string {
	switch k {
	case FaultTooManyRequests:
		return "TooManyRequests"
	case FaultServerError:
		return "ServerError"
	case FaultTimeout:
		return "Timeout"
	case FaultDrop:
		return "Drop"
	}
	return "FaultKind(?)"
}

// Fault describes an injected failure. Faults are considered in injection order; the first one
// that matches the request and is armed fires. A fault that lets a request through because of
// Skip does not stop later faults from firing on it.
type Fault struct {
	Kind FaultKind
	// Status for FaultServerError: 500 (default), 502, 503 or 504.
	Status int
	// Match selects requests; nil matches every request. It may read r.Body (it sees the full body).
	Match func(r *http.Request) bool
	// Skip lets this many matching requests through before the fault fires.
	Skip int
	// Times is how many matching requests to fault: 0 means 1, negative means all of them.
	Times int
	// AfterApply performs the request (its effect and its rate-limit accounting) first and then
	// replaces the response with the fault: "the server did it but the answer was lost".
	AfterApply bool
}

type faultState struct {
	f       Fault
	skip    int
	times   int // remaining; negative = unlimited
	removed bool
}

// InjectFault adds a fault.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := &faultState{f: f, skip: f.Skip, times: f.Times}
	if fs.times == 0 {
		fs.times = 1
	}
	s.faults = append(s.faults, fs)
}

// ClearFaults removes all faults and releases requests hanging in a FaultTimeout (their
// connections are closed without a response).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		f.removed = true
	}
	s.faults = nil
	close(s.release)
	s.release = make(chan struct{})
}

// matchFaults evaluates the user-supplied matchers outside the lock (they may call back into the
// Server) and returns the faults that matched.
func (s *Server) matchFaults(r *http.Request, body []byte) []*faultState {
	s.mu.Lock()
	snapshot := append([]*faultState(nil), s.faults...)
	s.mu.Unlock()
	var matched []*faultState
	for _, fs := range snapshot {
		ok := true
		if fs.f.Match != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			ok = fs.f.Match(r)
		}
		if ok {
			matched = append(matched, fs)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return matched
}

// firing is a fault that fires on one request, with the release channel of the ClearFaults
// generation it was taken in.
type firing struct {
	Fault
	release chan struct{}
}

// takeFault consumes Skip/Times of the matched faults and returns the one that fires. Must hold s.mu.
func (s *Server) takeFault(matched []*faultState) *firing {
	for _, fs := range matched {
		if fs.removed || fs.times == 0 {
			continue
		}
		if fs.skip > 0 {
			fs.skip--
			continue
		}
		if fs.times > 0 {
			fs.times--
		}
		return &firing{Fault: fs.f, release: s.release}
	}
	return nil
}

func (s *Server) performFault(w http.ResponseWriter, r *http.Request, f *firing, c *call, rec *Request) {
	switch f.Kind {
	case FaultTooManyRequests:
		s.mu.Lock()
		limit := 300
		if t := s.tokens[c.rawToken]; t != nil && s.opts.RateLimit > 0 {
			limit = s.opts.RateLimit
		}
		rec.Status = http.StatusTooManyRequests
		s.mu.Unlock()
		tooManyRequests(limit, windowEnd(c.now, 5*time.Minute)).write(w)
	case FaultServerError:
		status := f.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		s.setStatus(rec, status)
		serverErrorResponse(status).write(w)
	case FaultTimeout:
		select {
		case <-r.Context().Done():
			return
		case <-f.release:
			dropConnection(w)
		}
	case FaultDrop:
		dropConnection(w)
	default:
		s.setStatus(rec, http.StatusInternalServerError)
		serverErrorResponse(http.StatusInternalServerError).write(w)
	}
}

// serverErrorResponse is a JSON error body for an injected 5xx. 503 uses Mastodon's
// errors.temporary_problem text (app/controllers/concerns/api/error_handling.rb); other codes
// use the HTTP status text. Simulator: a real 502/504 usually comes from the reverse proxy.
func serverErrorResponse(status int) *response {
	msg := http.StatusText(status)
	if status == http.StatusServiceUnavailable {
		msg = "There was a temporary problem serving your request, please try again"
	}
	if msg == "" {
		msg = "Error"
	}
	return errorResponse(status, msg)
}

// dropConnection closes the client connection without writing a response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// MatchPath matches requests whose method equals method ("" = any) and whose path starts with
// pathPrefix.
func MatchPath(method, pathPrefix string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return (method == "" || r.Method == method) && strings.HasPrefix(r.URL.Path, pathPrefix)
	}
}

// MatchExactPath matches requests whose method equals method ("" = any) and whose path is path.
func MatchExactPath(method, path string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return (method == "" || r.Method == method) && r.URL.Path == path
	}
}

// MatchQuery matches requests whose query has key=value.
func MatchQuery(key, value string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		vs, ok := r.URL.Query()[key]
		if !ok {
			return false
		}
		for _, v := range vs {
			if v == value {
				return true
			}
		}
		return false
	}
}

// MatchToken matches requests presenting the bearer token tok in the Authorization header.
func MatchToken(tok string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		h := r.Header.Get("Authorization")
		return len(h) > 7 && strings.EqualFold(h[:7], "bearer ") && strings.TrimSpace(h[7:]) == tok
	}
}

// MatchAll matches requests that every matcher matches.
func MatchAll(ms ...func(*http.Request) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, m := range ms {
			if m != nil && !m(r) {
				return false
			}
		}
		return true
	}
}
