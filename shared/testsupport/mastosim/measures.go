package mastosim

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/domain"
)

// Measures: app/controllers/api/v1/admin/measures_controller.rb, app/lib/admin/metrics/measure.rb,
// app/lib/admin/metrics/measure/instance_{follows,followers,accounts}_measure.rb,
// app/serializers/rest/admin/measure_serializer.rb.

type measureJSON struct {
	Key   string             `json:"key"`
	Unit  *string            `json:"unit"`
	Total string             `json:"total"`
	Data  []measureDatumJSON `json:"data"`
}

type measureDatumJSON struct {
	Date  string `json:"date"`
	Value string `json:"value"`
}

// instanceMeasures are the MEASURES this simulator computes; all have with_params? true and
// total_in_time_range? false (so no previous_total). Other keys are skipped like unknown ones.
var instanceMeasures = map[string]bool{"instance_follows": true, "instance_followers": true, "instance_accounts": true}

func paramMissing(name string) *response {
	// ActionController::ParameterMissing → 400 (app/controllers/concerns/api/error_handling.rb)
	return errorResponse(http.StatusBadRequest, "param is missing or the value is empty: "+name)
}

// parseRubyDate approximates String#to_datetime for the formats clients send.
func parseRubyDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{
		time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// measuresDatesRequired is whether set_measures requires start_at and end_at: params.require
// from 4.6.4 (security release, commit 467c933459) until 4.6.6 (#40122) made them optional
// again; before 4.6.4 (e.g. 4.3.0's measures_controller.rb) params[:start_at] and
// params[:end_at] are passed through as they are.
func (s *Server) measuresDatesRequired() bool {
	return s.ver.atLeast(4, 6, 4) && !s.ver.atLeast(4, 6, 6)
}

// measures is #create: authorize_if_got_token! :'admin:read' (the coarse scope only; there is
// no granular scope for measures), set_measures (the dates, required or not by version, and
// params.require of each with_params measure's key), then Pundit (DashboardPolicy#index?).
//
// BaseMeasure#initialize casts each date with String#to_datetime, which gives nil for a blank
// string and raises Date::Error (422) for an unparsable one; without both dates the series
// (generate_series over NULL) is empty and the all-time totals are still answered.
func (s *Server) measures(c *call) *response {
	if r := c.authorizeIfGotToken("admin:read"); r != nil {
		return r
	}
	var dates [2]time.Time
	haveDates := true
	for i, k := range []string{"start_at", "end_at"} {
		v, ok := c.params.get(k)
		if !ok || !present(v) {
			if s.measuresDatesRequired() {
				return paramMissing(k)
			}
			haveDates = false
			continue
		}
		t, ok := parseRubyDate(toS(v))
		if !ok {
			// rescue_from Date::Error → 422 (app/controllers/concerns/api/error_handling.rb)
			return errorResponse(http.StatusUnprocessableEntity, "Invalid date supplied")
		}
		dates[i] = t
	}
	start, end := dates[0], dates[1]
	var keys []string
	if v, ok := c.params.get("keys"); ok { // Array(params[:keys])
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if isScalar(e) {
					keys = append(keys, toS(e))
				}
			}
		default:
			if isScalar(x) && x != nil {
				keys = append(keys, toS(x))
			}
		}
	}
	var out []measureJSON
	for _, k := range keys {
		if !instanceMeasures[k] {
			continue
		}
		// params.require(key): missing or empty → 400. Simulator: a hash without a domain is
		// also a 400 (Mastodon would count the local accounts, domain IS NULL).
		sub, ok := c.params[k].(map[string]any)
		if !ok || len(sub) == 0 {
			return paramMissing(k)
		}
		dv, ok := sub["domain"]
		if !ok || !isScalar(dv) || !present(dv) {
			return paramMissing(k)
		}
		// accounts.domain = :domain compares the raw parameter; include_subdomains is tested
		// for Ruby truthiness, so any value (even "false") enables it, JSON false does not.
		d := toS(dv)
		subdomains := false
		if v, ok := sub["include_subdomains"]; ok && truthy(v) {
			subdomains = true
		}
		out = append(out, measureJSON{
			Key:   k,
			Total: strconv.Itoa(s.measureTotal(k, d, subdomains)),
			Data:  s.measureData(start, end, haveDates),
		})
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	if out == nil {
		out = []measureJSON{}
	}
	return jsonResponse(http.StatusOK, out)
}

func (s *Server) measureTotal(key, d string, subdomains bool) int {
	match := func(x string) bool {
		if subdomains {
			return domain.IsWithin(x, d)
		}
		return x == d
	}
	total := 0
	switch key {
	case "instance_follows", "instance_followers":
		for fd, n := range s.follows {
			if match(fd) {
				if key == "instance_follows" {
					total += n.follows
				} else {
					total += n.followers
				}
			}
		}
	case "instance_accounts":
		for _, a := range s.accounts {
			if a.Domain != "" && match(a.Domain) {
				total++
			}
		}
	}
	return total
}

// measureData is the per-day series. From 4.3.0 it is generate_series(:start_at::timestamp,
// :end_at::timestamp, '1 day')::date, so each date is a plain "2026-08-01"
// (app/lib/admin/metrics/measure/query_helper.rb#generated_series_days, #29928); before, the
// series ran over date_trunc('day', …)::date and its values were timestamps. Follows carry no
// dates in the simulator, so every value is "0".
func (s *Server) measureData(start, end time.Time, ok bool) []measureDatumJSON {
	data := []measureDatumJSON{}
	if !ok {
		return data
	}
	format := pgDateJSON
	if !s.ver.atLeast(4, 3, 0) {
		format = pgTimestampJSON
		start, end = midnightUTC(start), midnightUTC(end)
	}
	for day, i := start, 0; !day.After(end) && i < 3660; day, i = day.AddDate(0, 0, 1), i+1 {
		data = append(data, measureDatumJSON{Date: format(midnightUTC(day)), Value: "0"})
	}
	return data
}
