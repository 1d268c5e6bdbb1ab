package mastosim

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/domain"
)

// Options configures a Server. The zero value is a Mastodon 4.3.0 server with default limits.
type Options struct {
	// Clock supplies all time. Default clock.Real{}.
	Clock clock.Clock
	// Version is reported by /api/v1/instance and /api/v2/instance. Default "4.3.0". Below 4.3.0
	// the domain-block MAX_LIMIT is 200, from 4.3.0 it is 500 (reference §3.2).
	Version string
	// RateLimit is throttle_per_token_api: requests per token per 5-minute window. 0 = 300;
	// negative turns off every non-paging throttle (per token, per user, per IP, app
	// registrations).
	RateLimit int
	// PagingLimit is throttle_authenticated_paging: requests carrying max_id, min_id, since_id or
	// page per user per 15-minute window. 0 = 300; negative turns off both paging throttles.
	PagingLimit int
	// UserRateLimit is throttle_authenticated_api: requests per user (all tokens share the one
	// admin user) per 5-minute window. 0 = 1500; negative = off. Ignored when RateLimit < 0.
	UserRateLimit int
	// DisableMeasures answers 404 on /api/v1/admin/measures, like servers without it.
	DisableMeasures bool
	// Title of the instance. Default "Mastodon simulator".
	Title string
	// Domain is LOCAL_DOMAIN, used in account URLs and the instance's uri/domain. Default: the
	// Host of each request.
	Domain string
	// ShowDomainBlocks is Setting.show_domain_blocks for GET /api/v1/instance/domain_blocks:
	// "all" (default here), "users" or "disabled".
	ShowDomainBlocks string
	// ShowDomainBlocksRationale is Setting.show_domain_blocks_rationale: "all" (default here),
	// "users" or "disabled".
	ShowDomainBlocksRationale string
	// Webhooks configures the delivery of admin webhooks (AddWebhook): retries, backoff,
	// client.
	Webhooks WebhookOptions
}

// Account is a seeded account. Domain "" means local. A local account is pending while
// !Approved. ID is assigned by AddAccount when empty.
type Account struct {
	ID            string
	Username      string
	Email         string
	Confirmed     bool
	Approved      bool
	CreatedAt     time.Time
	Domain        string // "" = local
	Locale        string
	InviteRequest string
	// Additions to the brief's shape, all optional.
	DisplayName string
	IP          string // most recent sign-in IP, serialised as ip and ips[0]
	Suspended   bool
	Silenced    bool
	Disabled    bool
	Sensitized  bool
}

// DomainBlock is a domain block as stored by the server.
type DomainBlock struct {
	ID             string
	Domain         string
	Severity       string // silence (default), suspend or noop
	RejectMedia    bool
	RejectReports  bool
	Obfuscate      bool
	PrivateComment string
	PublicComment  string
	CreatedAt      time.Time
}

// Request is one request received by the server, as recorded by Requests.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Token    string // the access token presented, "" if none
	// Status is the status code sent: 0 when a FaultTimeout or FaultDrop sent nothing.
	Status int
	Time   time.Time
	Body   string
}

// Server is the simulator. It implements http.Handler and is safe for concurrent use.
type Server struct {
	clk  clock.Clock
	opts Options
	ver  version

	throttles []throttleDef

	mu               sync.Mutex
	accounts         map[int64]*Account
	lastAccountID    int64
	blocks           map[int64]*domainBlock
	lastBlockID      int64
	emailBlocks      map[int64]*emailDomainBlock
	lastEmailBlockID int64
	follows          map[string]followCounts
	tokens           map[string]*token
	apps             map[int64]*app
	lastAppID        int64
	requests         []*Request
	faults           []*faultState
	release          chan struct{}
	counters         map[string]*counter
	admin            adminUser
	webhooks         webhookState
}

type followCounts struct{ follows, followers int }

type domainBlock struct {
	id             int64
	domain         string
	severity       string
	rejectMedia    bool
	rejectReports  bool
	obfuscate      bool
	privateComment *string
	publicComment  *string
	createdAt      time.Time
}

type adminUser struct {
	id        string
	username  string
	createdAt time.Time
}

// New returns a server with no accounts, blocks or tokens.
func New(opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Version == "" {
		opts.Version = "4.3.0"
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 300
	}
	if opts.PagingLimit == 0 {
		opts.PagingLimit = 300
	}
	if opts.UserRateLimit == 0 {
		opts.UserRateLimit = 1500
	}
	if opts.Title == "" {
		opts.Title = "Mastodon simulator"
	}
	if opts.ShowDomainBlocks == "" {
		opts.ShowDomainBlocks = "all"
	}
	if opts.ShowDomainBlocksRationale == "" {
		opts.ShowDomainBlocksRationale = "all"
	}
	s := &Server{
		clk:         opts.Clock,
		opts:        opts,
		ver:         parseVersion(opts.Version),
		accounts:    map[int64]*Account{},
		blocks:      map[int64]*domainBlock{},
		emailBlocks: map[int64]*emailDomainBlock{},
		follows:     map[string]followCounts{},
		tokens:      map[string]*token{},
		apps:        map[int64]*app{},
		release:     make(chan struct{}),
		counters:    map[string]*counter{},
	}
	s.admin = adminUser{id: "1", username: "admin", createdAt: s.clk.Now().UTC()}
	s.throttles = buildThrottles(opts)
	s.webhooks.init()
	return s
}

// AddAccount seeds an account and returns its id. Ids are Mastodon-style snowflakes (numeric
// strings) that increase with every call. A non-empty a.ID must be a positive integer not in
// use. A zero CreatedAt means now. It panics on an invalid or duplicate ID. A local account
// is a sign-up: the webhooks subscribed to account.created receive it (User's
// after_create_commit :trigger_webhooks).
func (s *Server) AddAccount(a Account) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	a.CreatedAt = a.CreatedAt.UTC()
	if a.Domain != "" {
		if d, err := domain.Normalize(a.Domain); err == nil {
			a.Domain = d
		}
	}
	var id int64
	if a.ID != "" {
		n, err := strconv.ParseInt(a.ID, 10, 64)
		if err != nil || n <= 0 {
			panic(fmt.Sprintf("mastosim: AddAccount: invalid id %q", a.ID))
		}
		if _, dup := s.accounts[n]; dup {
			panic(fmt.Sprintf("mastosim: AddAccount: duplicate id %q", a.ID))
		}
		id = n
	} else {
		// Mastodon's timestamp_id: milliseconds << 16 plus a sequence (lib/mastodon/snowflake.rb).
		id = a.CreatedAt.UnixMilli() << 16
		if id <= s.lastAccountID {
			id = s.lastAccountID + 1
		}
	}
	if id > s.lastAccountID {
		s.lastAccountID = id
	}
	a.ID = strconv.FormatInt(id, 10)
	s.accounts[id] = &a
	if a.Domain == "" {
		s.triggerWebhooks("account.created", &a)
	}
	return a.ID
}

// Account returns a copy of the account with that id.
func (s *Server) Account(id string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return Account{}, false
	}
	a, ok := s.accounts[n]
	if !ok {
		return Account{}, false
	}
	return *a, true
}

// Accounts returns copies of all accounts in id order (oldest first).
func (s *Server) Accounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.accountIDsDesc()
	out := make([]Account, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		out = append(out, *s.accounts[ids[i]])
	}
	return out
}

// AddDomainBlock seeds a domain block and returns its id. The domain is normalised; empty
// severity means silence and a zero CreatedAt means now. Empty comments are stored as null.
// It panics on an invalid or already blocked domain, an unknown severity or a bad/duplicate ID.
func (s *Server) AddDomainBlock(b DomainBlock) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := domain.Normalize(b.Domain)
	if err != nil {
		panic(fmt.Sprintf("mastosim: AddDomainBlock: %v", err))
	}
	for _, x := range s.blocks {
		if x.domain == d {
			panic(fmt.Sprintf("mastosim: AddDomainBlock: %s is already blocked", d))
		}
	}
	if b.Severity == "" {
		b.Severity = "silence"
	}
	if !validSeverity(b.Severity) {
		panic(fmt.Sprintf("mastosim: AddDomainBlock: invalid severity %q", b.Severity))
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = s.clk.Now()
	}
	var id int64
	if b.ID != "" {
		n, err := strconv.ParseInt(b.ID, 10, 64)
		if err != nil || n <= 0 {
			panic(fmt.Sprintf("mastosim: AddDomainBlock: invalid id %q", b.ID))
		}
		if _, dup := s.blocks[n]; dup {
			panic(fmt.Sprintf("mastosim: AddDomainBlock: duplicate id %q", b.ID))
		}
		id = n
	} else {
		id = s.lastBlockID + 1
	}
	if id > s.lastBlockID {
		s.lastBlockID = id
	}
	db := &domainBlock{
		id: id, domain: d, severity: b.Severity,
		rejectMedia: b.RejectMedia, rejectReports: b.RejectReports, obfuscate: b.Obfuscate,
		createdAt: b.CreatedAt.UTC(),
	}
	if b.PrivateComment != "" {
		db.privateComment = ptr(b.PrivateComment)
	}
	if b.PublicComment != "" {
		db.publicComment = ptr(b.PublicComment)
	}
	s.blocks[id] = db
	return strconv.FormatInt(id, 10)
}

// DomainBlocks returns all domain blocks sorted by domain.
func (s *Server) DomainBlocks() []DomainBlock {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DomainBlock, 0, len(s.blocks))
	for _, b := range s.blocks {
		out = append(out, b.public())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out
}

func (b *domainBlock) public() DomainBlock {
	return DomainBlock{
		ID: strconv.FormatInt(b.id, 10), Domain: b.domain, Severity: b.severity,
		RejectMedia: b.rejectMedia, RejectReports: b.rejectReports, Obfuscate: b.obfuscate,
		PrivateComment: deref(b.privateComment), PublicComment: deref(b.publicComment),
		CreatedAt: b.createdAt,
	}
}

// SetFollows sets what the instance_follows (local accounts following accounts on domain) and
// instance_followers (accounts on domain following local accounts) measures report for domain.
// With include_subdomains the measures sum the domain and all its subdomains.
func (s *Server) SetFollows(d string, follows, followers int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, err := domain.Normalize(d); err == nil {
		d = n
	}
	s.follows[d] = followCounts{follows: follows, followers: followers}
}

// Requests returns every request received since the last ResetRequests, in order, including
// faulted and throttled ones.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
	}
	return out
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// ServeHTTP records the request, applies any injected fault, enforces the rate limits and
// dispatches to the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.clk.Now()
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		_ = r.Body.Close()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	c, perr := newCall(r, body, now)

	rec := &Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Token: c.rawToken, Time: now, Body: string(body),
	}
	matched := s.matchFaults(r, body)
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	f := s.takeFault(matched)
	s.mu.Unlock()

	if f != nil && !f.AfterApply {
		s.performFault(w, r, f, c, rec)
		return
	}
	resp := s.handle(c, perr)
	if f != nil {
		s.performFault(w, r, f, c, rec)
		return
	}
	s.setStatus(rec, resp.status)
	resp.write(w)
}

func (s *Server) setStatus(rec *Request, status int) {
	s.mu.Lock()
	rec.Status = status
	s.mu.Unlock()
}

// handle runs the Rack::Attack throttles and then the Rails router, under the state lock.
func (s *Server) handle(c *call, parseErr error) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The token lookup needs the lock (tokens may be added concurrently).
	c.token = s.tokens[c.rawToken]
	data, hit := s.throttle(c)
	if hit != nil {
		return throttledResponse(*hit, c.now)
	}
	var resp *response
	if parseErr != nil {
		// ApplicationController rescues ActionDispatch::Http::Parameters::ParseError with
		// respond_with_error(400) (app/controllers/application_controller.rb).
		resp = errorResponse(http.StatusBadRequest, "The request you submitted was invalid or malformed.")
	} else {
		resp = s.route(c)
	}
	if isAPIPath(c.path) && len(data) > 0 {
		// app/controllers/concerns/api/rate_limit_headers.rb#set_rate_limit_headers
		setRateLimitHeaders(resp.header, data, c.now)
	}
	return resp
}

// route is config/routes/api.rb, reduced to the endpoints the simulator implements. Anything
// else is ApplicationController#raise_not_found: 404 {"error":"Record not found"}.
func (s *Server) route(c *call) *response {
	p := strings.TrimSuffix(c.path, "/")
	seg := strings.Split(strings.TrimPrefix(p, "/"), "/")
	m := c.method
	switch {
	case p == "/api/v1/instance" && m == http.MethodGet:
		return s.instanceV1(c)
	case p == "/api/v2/instance" && m == http.MethodGet:
		return s.instanceV2(c)
	case p == "/api/v1/instance/domain_blocks" && m == http.MethodGet:
		return s.publicDomainBlocks(c)
	case p == "/api/v1/apps" && m == http.MethodPost:
		return s.createApp(c)
	case p == "/api/v1/apps/verify_credentials" && m == http.MethodGet:
		return s.verifyAppCredentials(c)
	case p == "/api/v1/accounts/verify_credentials" && m == http.MethodGet:
		return s.verifyAccountCredentials(c)
	case p == "/api/v2/admin/accounts" && m == http.MethodGet:
		return s.listAccounts(c, true)
	case p == "/api/v1/admin/accounts" && m == http.MethodGet:
		return s.listAccounts(c, false)
	case len(seg) == 5 && p == "/api/v1/admin/accounts/"+seg[4] && m == http.MethodGet:
		return s.showAccount(c, seg[4])
	case len(seg) == 6 && p == "/api/v1/admin/accounts/"+seg[4]+"/approve" && m == http.MethodPost:
		return s.approveAccount(c, seg[4])
	case len(seg) == 6 && p == "/api/v1/admin/accounts/"+seg[4]+"/reject" && m == http.MethodPost:
		return s.rejectAccount(c, seg[4])
	case p == "/api/v1/admin/domain_blocks" && m == http.MethodGet:
		return s.listDomainBlocks(c)
	case p == "/api/v1/admin/domain_blocks" && m == http.MethodPost:
		return s.createDomainBlock(c)
	case len(seg) == 5 && p == "/api/v1/admin/domain_blocks/"+seg[4]:
		switch m {
		case http.MethodGet:
			return s.showDomainBlock(c, seg[4])
		case http.MethodPut, http.MethodPatch:
			return s.updateDomainBlock(c, seg[4])
		case http.MethodDelete:
			return s.destroyDomainBlock(c, seg[4])
		}
	case p == "/api/v1/admin/measures" && m == http.MethodPost && !s.opts.DisableMeasures:
		return s.measures(c)
	}
	if r := s.routeEmailDomainBlocks(c, p, seg); r != nil {
		return r
	}
	return errorResponse(http.StatusNotFound, "Record not found")
}

func ptr[T any](v T) *T { return &v }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
