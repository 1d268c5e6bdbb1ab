package mastosim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// throttleDef is one Rack::Attack throttle from config/initializers/rack_attack.rb.
type throttleDef struct {
	name   string
	limit  int
	period time.Duration
	// discriminator returns the counter key, or "" when the throttle does not apply.
	discriminator func(c *call) string
}

// throttleData is Rack::Attack's env['rack.attack.throttle_data'][name].
type throttleData struct {
	name   string
	limit  int
	count  int
	period time.Duration
}

type counter struct {
	window int64
	count  int
}

func isAPIPath(p string) bool { return strings.HasPrefix(p, "/api") }

// pagingRequest is Rack::Attack::Request#paging_request?.
func (c *call) pagingRequest() bool {
	return c.rackPresent("page") || c.rackPresent("min_id") || c.rackPresent("max_id") || c.rackPresent("since_id")
}

// buildThrottles lists the throttles in the order of config/initializers/rack_attack.rb; the
// order matters because Rack::Attack stops counting at the first throttle that trips.
func buildThrottles(o Options) []throttleDef {
	var ts []throttleDef
	user := func(c *call) string {
		if c.token == nil {
			return ""
		}
		return c.token.userID
	}
	if o.RateLimit > 0 {
		if o.UserRateLimit > 0 {
			ts = append(ts, throttleDef{"throttle_authenticated_api", o.UserRateLimit, 5 * time.Minute, func(c *call) string {
				if !isAPIPath(c.path) {
					return ""
				}
				return user(c)
			}})
		}
		ts = append(ts, throttleDef{"throttle_per_token_api", o.RateLimit, 5 * time.Minute, func(c *call) string {
			if !isAPIPath(c.path) || c.token == nil {
				return ""
			}
			return c.token.token
		}})
		ts = append(ts, throttleDef{"throttle_unauthenticated_api", 300, 5 * time.Minute, func(c *call) string {
			if !isAPIPath(c.path) || c.token != nil {
				return ""
			}
			return c.remoteIP
		}})
	}
	if o.PagingLimit > 0 {
		ts = append(ts, throttleDef{"throttle_authenticated_paging", o.PagingLimit, 15 * time.Minute, func(c *call) string {
			if !c.pagingRequest() {
				return ""
			}
			return user(c)
		}})
		ts = append(ts, throttleDef{"throttle_unauthenticated_paging", 300, 15 * time.Minute, func(c *call) string {
			if !c.pagingRequest() || c.token != nil {
				return ""
			}
			return c.remoteIP
		}})
	}
	if o.RateLimit > 0 {
		ts = append(ts, throttleDef{"throttle_oauth_application_registrations/ip", 5, 10 * time.Minute, func(c *call) string {
			if c.method != http.MethodPost || c.path != "/api/v1/apps" {
				return ""
			}
			return c.remoteIP
		}})
	}
	return ts
}

// throttle runs Rack::Attack::Configuration#throttled?: each applicable throttle increments its
// counter for the current fixed window (epoch_time / period) and records its data; the first one
// whose count exceeds its limit stops the evaluation and throttles the request. Must hold s.mu.
func (s *Server) throttle(c *call) (data []throttleData, hit *throttleData) {
	epoch := c.now.Unix()
	for _, t := range s.throttles {
		d := t.discriminator(c)
		if d == "" {
			continue
		}
		period := int64(t.period / time.Second)
		window := epoch / period
		key := t.name + "\x00" + d
		ct := s.counters[key]
		if ct == nil || ct.window != window {
			ct = &counter{window: window}
			s.counters[key] = ct
		}
		ct.count++
		td := throttleData{name: t.name, limit: t.limit, count: ct.count, period: t.period}
		data = append(data, td)
		if ct.count > t.limit {
			return data, &td
		}
	}
	return data, nil
}

// windowEnd is the end of the fixed window containing now: now + period - now % period.
// Simulator: Mastodon adds the offset to the request time including its fraction of a second;
// the simulator reports the exact window boundary.
func windowEnd(now time.Time, period time.Duration) time.Time {
	p := int64(period / time.Second)
	e := now.Unix()
	return time.Unix(e+p-e%p, 0).UTC()
}

// setRateLimitHeaders is Api::RateLimitHeaders#set_rate_limit_headers: the headers describe the
// throttle with the smallest remaining headroom (min_by limit - count, first on ties).
func setRateLimitHeaders(h http.Header, data []throttleData, now time.Time) {
	best := data[0]
	for _, d := range data[1:] {
		if d.limit-d.count < best.limit-best.count {
			best = d
		}
	}
	h.Set("X-RateLimit-Limit", strconv.Itoa(best.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(best.limit-best.count))
	h.Set("X-RateLimit-Reset", rubyISO8601Micro(windowEnd(now, best.period)))
}

// throttledResponse is Rack::Attack.throttled_responder in config/initializers/rack_attack.rb:
// 429, Content-Type application/json, X-RateLimit-* for the throttle that tripped with
// Remaining 0, body {"error":"Too many requests"} (errors.429), no Retry-After.
func throttledResponse(td throttleData, now time.Time) *response {
	return tooManyRequests(td.limit, windowEnd(now, td.period))
}

func tooManyRequests(limit int, reset time.Time) *response {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", rubyISO8601Micro(reset))
	return &response{status: http.StatusTooManyRequests, header: h, body: []byte(`{"error":"Too many requests"}`)}
}
