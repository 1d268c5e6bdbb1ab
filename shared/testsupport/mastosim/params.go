package mastosim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// call is one request as the Rails side sees it.
type call struct {
	r      *http.Request
	method string
	path   string
	now    time.Time
	// rackParams are Rack::Request#params (query plus form body, not JSON); Rack::Attack's
	// paging_request? looks at these.
	rackParams url.Values
	// params are ActionController params: query, then form or JSON body, merged, with Rails'
	// nested key syntax (a[b]=1, a[]=1) expanded.
	params   params
	rawToken string
	token    *token // nil when no token or an unknown one (resolved under the lock)
	remoteIP string
}

func newCall(r *http.Request, body []byte, now time.Time) (*call, error) {
	c := &call{r: r, method: r.Method, path: r.URL.Path, now: now, params: params{}}
	c.remoteIP = throttleableIP(r.RemoteAddr)
	query, _ := url.ParseQuery(r.URL.RawQuery)
	c.rackParams = url.Values{}
	for k, v := range query {
		c.rackParams[k] = append([]string(nil), v...)
	}
	for k, v := range query {
		for _, x := range v {
			assignNested(c.params, k, x)
		}
	}
	var perr error
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case len(body) == 0:
	case ct == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			perr = err
			break
		}
		bodyParams := params{}
		for k, v := range form {
			c.rackParams[k] = append(c.rackParams[k], v...)
			for _, x := range v {
				assignNested(bodyParams, k, x)
			}
		}
		c.params.merge(bodyParams)
	case ct == "multipart/form-data":
		form, err := parseMultipart(r, body)
		if err != nil {
			perr = err
			break
		}
		bodyParams := params{}
		for k, v := range form {
			c.rackParams[k] = append(c.rackParams[k], v...)
			for _, x := range v {
				assignNested(bodyParams, k, x)
			}
		}
		c.params.merge(bodyParams)
	case ct == "application/json" || strings.HasSuffix(ct, "+json"):
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			perr = err
			break
		}
		if m, ok := v.(map[string]any); ok {
			c.params.merge(m)
		} else {
			// ActionDispatch wraps non-object JSON bodies as _json.
			c.params["_json"] = v
		}
	}
	// Doorkeeper's access_token_methods: from_bearer_authorization, from_access_token_param,
	// from_bearer_param (config/initializers/doorkeeper.rb defaults).
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		c.rawToken = strings.TrimSpace(h[7:])
	} else if v, ok := c.params.get("access_token"); ok && isScalar(v) && toS(v) != "" {
		c.rawToken = toS(v)
	} else if v, ok := c.params.get("bearer_token"); ok && isScalar(v) && toS(v) != "" {
		c.rawToken = toS(v)
	}
	return c, perr
}

func parseMultipart(r *http.Request, body []byte) (url.Values, error) {
	_, ps, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	mr := multipart.NewReader(bytes.NewReader(body), ps["boundary"])
	out := url.Values{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		if p.FormName() != "" {
			out.Add(p.FormName(), string(b))
		}
	}
}

// throttleableIP is Rack::Attack::Request#throttleable_remote_ip: the remote IP, IPv6 masked
// to /64 (config/initializers/rack_attack.rb).
func throttleableIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// params holds Rails request parameters: values are string, json.Number, bool, nil,
// []any or map[string]any.
type params map[string]any

func (p params) get(k string) (any, bool) {
	v, ok := p[k]
	return v, ok
}

// merge overlays q on p (request body parameters override query parameters).
func (p params) merge(q map[string]any) {
	for k, v := range q {
		p[k] = v
	}
}

// scalar returns the value of k when it is present and permitted as a scalar by
// ActionController::Parameters#permit (string, number, boolean or null).
func (p params) scalar(k string) (any, bool) {
	v, ok := p[k]
	if !ok || !isScalar(v) {
		return nil, false
	}
	return v, true
}

// str is params[k].to_s for a permitted scalar, "" otherwise.
func (p params) str(k string) string {
	v, ok := p.scalar(k)
	if !ok {
		return ""
	}
	return toS(v)
}

// present is params[k].present? for a permitted scalar.
func (p params) present(k string) bool {
	v, ok := p.scalar(k)
	return ok && present(v)
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, json.Number, bool, nil:
		return true
	}
	return false
}

// toS is Ruby's #to_s on a parameter value.
func toS(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	return ""
}

// present is ActiveSupport's Object#present?.
func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return strings.TrimSpace(x) != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// truthy is Ruby truthiness: only nil and false are false.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	}
	return true
}

// rubyToI is Ruby's String#to_i (leading whitespace, optional sign, leading digits; 0 if none)
// and Float#to_i for JSON numbers.
func rubyToI(v any) int64 {
	s := toS(v)
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil {
			return int64(f)
		}
	}
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var n int64
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '_' && i > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			continue
		}
		if ch < '0' || ch > '9' {
			break
		}
		if n > (1<<62)/10 {
			break // saturate instead of overflowing
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		return -n
	}
	return n
}

// castBool is ActiveModel::Type::Boolean#cast: nil/"" → unset, FALSE_VALUES → false, else true.
func castBool(v any) (val bool, set bool) {
	switch x := v.(type) {
	case nil:
		return false, false
	case bool:
		return x, true
	}
	s := toS(v)
	if s == "" {
		return false, false
	}
	switch s {
	case "0", "f", "F", "false", "FALSE", "off", "OFF":
		return false, true
	}
	return true, true
}

// assignNested stores val under a Rack-style nested key: "a", "a[]", "a[b]", "a[b][]", "a[][b]".
func assignNested(m map[string]any, key, val string) {
	segs := splitNestedKey(key)
	assignSegs(m, segs, val)
}

func splitNestedKey(key string) []string {
	i := strings.IndexByte(key, '[')
	if i <= 0 || !strings.HasSuffix(key, "]") {
		return []string{key}
	}
	segs := []string{key[:i]}
	rest := key[i:]
	for rest != "" {
		if rest[0] != '[' {
			return []string{key}
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return []string{key}
		}
		segs = append(segs, rest[1:j])
		rest = rest[j+1:]
	}
	return segs
}

func assignSegs(m map[string]any, segs []string, val string) {
	k := segs[0]
	if len(segs) == 1 {
		m[k] = val
		return
	}
	if segs[1] == "" {
		arr, _ := m[k].([]any)
		if len(segs) == 2 {
			m[k] = append(arr, val)
			return
		}
		sub := map[string]any{}
		assignSegs(sub, segs[2:], val)
		m[k] = append(arr, sub)
		return
	}
	sub, ok := m[k].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[k] = sub
	}
	assignSegs(sub, segs[1:], val)
}

// rackPresent is Rack::Attack's `req.params['x'].present?` for the paging check.
func (c *call) rackPresent(k string) bool {
	v := c.rackParams[k]
	return len(v) > 0 && strings.TrimSpace(v[len(v)-1]) != ""
}
