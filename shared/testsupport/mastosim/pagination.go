package mastosim

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// limitParam is Api::BaseController#limit_param: the default without a limit parameter,
// otherwise [limit.to_i.abs, max_limit || default*2].min.
func limitParam(p params, def, max int) int {
	v, ok := p.scalar("limit")
	if !ok || !truthy(v) {
		return def
	}
	n := rubyToI(v)
	if n < 0 {
		n = -n
	}
	if max == 0 {
		max = def * 2
	}
	if n > int64(max) {
		return max
	}
	return int(n)
}

// paginateIDs is Paginable#to_a_paginated_by_id (app/models/concerns/paginable.rb) over ids
// sorted descending: with min_id, ascending ids > min_id (and < max_id) limited then reversed;
// otherwise descending ids < max_id and > since_id, limited.
func paginateIDs(desc []int64, limit int, p params) []int64 {
	bound := func(k string) (int64, bool) {
		if !p.present(k) {
			return 0, false
		}
		v, _ := p.scalar(k)
		return rubyToI(v), true
	}
	maxID, hasMax := bound("max_id")
	sinceID, hasSince := bound("since_id")
	minID, hasMin := bound("min_id")
	out := []int64{}
	if hasMin {
		for i := len(desc) - 1; i >= 0 && len(out) < limit; i-- {
			id := desc[i]
			if id > minID && (!hasMax || id < maxID) {
				out = append(out, id)
			}
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return out
	}
	for _, id := range desc {
		if len(out) >= limit {
			break
		}
		if (!hasMax || id < maxID) && (!hasSince || id > sinceID) {
			out = append(out, id)
		}
	}
	return out
}

// setPaginationHeaders is Api::Pagination#set_pagination_headers with the controllers'
// next_path (max_id of the last record, only when records_continue?, i.e. the page is full)
// and prev_path (min_id of the first record, unless the page is empty). keep lists the
// controller's PAGINATION_PARAMS, copied from the request like
// params.slice(*PAGINATION_PARAMS).permit(*PAGINATION_PARAMS).
//
// It returns false when Mastodon would crash: with limit 0 an empty page "continues" and
// pagination_max_id calls nil.id (NoMethodError → 500).
func setPaginationHeaders(c *call, resp *response, path string, keep []string, ids []int64, limit int) bool {
	var links []string
	if len(ids) == limit {
		if len(ids) == 0 {
			return false
		}
		links = append(links, "<"+c.pageURL(path, keep, "max_id", ids[len(ids)-1])+`>; rel="next"`)
	}
	if len(ids) > 0 {
		links = append(links, "<"+c.pageURL(path, keep, "min_id", ids[0])+`>; rel="prev"`)
	}
	if len(links) > 0 {
		resp.header.Set("Link", strings.Join(links, ", "))
	}
	return true
}

// internalError is what an unhandled exception in a controller produces.
func internalError() *response {
	return errorResponse(http.StatusInternalServerError, "Internal Server Error")
}

// pageURL builds the absolute URL of a url helper called with pagination params: Rails'
// Hash#to_query escapes each key=value pair with CGI.escape and sorts the pairs.
// Simulator: the host is the request's Host and the scheme http (https with TLS or when
// X-Forwarded-Proto says so), where Mastodon uses its configured LOCAL_DOMAIN and https.
func (c *call) pageURL(path string, keep []string, key string, id int64) string {
	vals := map[string]string{}
	for _, k := range keep {
		if v, ok := c.params.scalar(k); ok {
			vals[k] = toS(v)
		}
	}
	vals[key] = strconv.FormatInt(id, 10)
	pairs := make([]string, 0, len(vals))
	for k, v := range vals {
		pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	sort.Strings(pairs)
	return c.baseURL() + path + "?" + strings.Join(pairs, "&")
}

func (c *call) baseURL() string {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	if p := c.r.Header.Get("X-Forwarded-Proto"); p != "" {
		scheme = strings.ToLower(strings.TrimSpace(strings.Split(p, ",")[0]))
	}
	return scheme + "://" + c.r.Host
}
