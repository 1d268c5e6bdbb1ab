package mastosim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// response is built by the handlers under the state lock and written afterwards, so that a
// fault with AfterApply can discard it and Requests can record its status.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range r.header {
		h[k] = v
	}
	if r.body != nil {
		h.Set("Content-Length", strconv.Itoa(len(r.body)))
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// jsonResponse renders v like Rails' `render json:` (Content-Type application/json; charset=utf-8).
func jsonResponse(status int, v any) *response {
	b, err := json.Marshal(v)
	if err != nil {
		panic("mastosim: cannot encode response: " + err.Error())
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	return &response{status: status, header: h, body: b}
}

// errorResponse is Mastodon's `render json: { error: … }, status: …`
// (app/controllers/api/base_controller.rb, app/controllers/concerns/api/error_handling.rb).
func errorResponse(status int, msg string) *response {
	return jsonResponse(status, map[string]string{"error": msg})
}

// emptyResponse is Api::BaseController#render_empty: 200 {}.
func emptyResponse() *response {
	return jsonResponse(http.StatusOK, struct{}{})
}

// headResponse is Rails' `head status`: no body.
func headResponse(status int) *response {
	return &response{status: status, header: http.Header{}, body: []byte{}}
}

// railsTime formats like ActiveSupport's JSON encoding of a TimeWithZone in UTC (precision 3).
func railsTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// rubyISO8601Micro formats like Ruby's Time#iso8601(6) on a UTC time.
func rubyISO8601Micro(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

// pgTimestampJSON formats a PostgreSQL timestamp row value as Rails encodes it in measures data.
func pgTimestampJSON(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000-07:00")
}

// pgDateJSON formats a PostgreSQL date row value as Rails encodes it in measures data.
func pgDateJSON(t time.Time) string {
	return t.UTC().Format("2006-01-02")
}
