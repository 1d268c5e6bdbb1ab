package mastosim

import (
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Admin accounts API: app/controllers/api/v1/admin/accounts_controller.rb,
// app/controllers/api/v2/admin/accounts_controller.rb, app/models/account_filter.rb,
// app/serializers/rest/admin/account_serializer.rb.

const accountsLimit = 100 // Api::V1::Admin::AccountsController::LIMIT

// accountFilterKeys is AccountFilter::KEYS (app/models/account_filter.rb), the order in which
// filters are applied (and invalid values reported).
var accountFilterKeys = []string{"origin", "status", "role_ids", "username", "by_domain", "display_name", "email", "ip", "invited_by"}

// v2FilterParams is Api::V2::Admin::AccountsController::FILTER_PARAMS. (Its `role_ids: []`
// inside %i() is two symbols, so array role_ids are not permitted anywhere.)
var v2FilterParams = []string{"origin", "status", "permissions", "username", "by_domain", "display_name", "email", "ip", "invited_by", "role_ids"}

// v1FilterParams is Api::V1::Admin::AccountsController::FILTER_PARAMS.
var v1FilterParams = []string{"local", "remote", "by_domain", "active", "pending", "disabled", "sensitized", "silenced", "suspended", "username", "display_name", "email", "ip", "staff"}

type filterKV struct{ key, value string }

// translatedFilterParams is #translated_filter_params of the v1 and v2 controllers.
func translatedFilterParams(p params, v2 bool) []filterKV {
	var out []filterKV
	if v2 {
		for _, k := range accountFilterKeys {
			if inList(v2FilterParams, k) {
				if v, ok := p.scalar(k); ok {
					out = append(out, filterKV{k, toS(v)})
				}
			}
		}
		if v, ok := p.scalar("permissions"); ok {
			if s, isStr := v.(string); isStr && s == "staff" {
				// UserRole.that_can(:manage_reports): no seeded account has a role, so any
				// role filter selects nobody. The marker value is never a real role id.
				out = setKV(out, "role_ids", "\x00staff")
			}
		}
		return out
	}
	out = []filterKV{{"origin", "local"}, {"status", "active"}}
	for _, k := range accountFilterKeys {
		if inList(v1FilterParams, k) {
			if v, ok := p.scalar(k); ok {
				out = append(out, filterKV{k, toS(v)})
			}
		}
	}
	if p.present("remote") {
		out = setKV(out, "origin", "remote")
	}
	for _, st := range []string{"active", "pending", "disabled", "silenced", "suspended"} {
		if p.present(st) {
			out = setKV(out, "status", st)
		}
	}
	if p.present("staff") {
		out = setKV(out, "role_ids", "\x00staff")
	}
	return out
}

func setKV(kvs []filterKV, k, v string) []filterKV {
	for i := range kvs {
		if kvs[i].key == k {
			kvs[i].value = v
			return kvs
		}
	}
	return append(kvs, filterKV{k, v})
}

func inList(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// accountPredicate is AccountFilter#results: it validates every present filter in order
// (raising Mastodon::InvalidParameterError → 400 for unknown origin/status values) and returns
// the conjunction of their scopes.
func accountPredicate(kvs []filterKV) (func(*Account) bool, *response) {
	var preds []func(*Account) bool
	byDomain := false
	for _, kv := range kvs {
		if kv.key == "by_domain" && strings.TrimSpace(kv.value) != "" {
			byDomain = true
		}
	}
	for _, kv := range kvs {
		v := kv.value
		if strings.TrimSpace(v) == "" { // `if value.present?`
			continue
		}
		switch kv.key {
		case "origin":
			switch v {
			case "local":
				preds = append(preds, func(a *Account) bool { return a.Domain == "" })
			case "remote":
				if byDomain {
					continue // origin=remote is redundant with by_domain and dropped
				}
				preds = append(preds, func(a *Account) bool { return a.Domain != "" })
			default:
				return nil, errorResponse(http.StatusBadRequest, "Unknown origin: "+v)
			}
		case "status":
			switch v {
			case "active": // Account.without_suspended
				preds = append(preds, func(a *Account) bool { return !a.Suspended })
			case "pending": // accounts_with_users.merge(User.pending): approved = false, local only
				preds = append(preds, func(a *Account) bool { return a.Domain == "" && !a.Approved })
			case "suspended":
				preds = append(preds, func(a *Account) bool { return a.Suspended })
			case "disabled":
				preds = append(preds, func(a *Account) bool { return a.Domain == "" && a.Disabled && !a.Suspended })
			case "silenced":
				preds = append(preds, func(a *Account) bool { return a.Silenced })
			case "sensitized":
				preds = append(preds, func(a *Account) bool { return a.Sensitized })
			default:
				return nil, errorResponse(http.StatusBadRequest, "Unknown status: "+v)
			}
		case "role_ids", "invited_by":
			// No seeded user has a role or was invited.
			preds = append(preds, func(*Account) bool { return false })
		case "username": // Account.matches_username: lower(username) LIKE lower('value%')
			pat := strings.TrimPrefix(strings.TrimSpace(v), "@") + "%"
			preds = append(preds, func(a *Account) bool { return ilike(pat, a.Username) })
		case "by_domain": // Account.where(domain: value.to_s.strip)
			d := strings.TrimSpace(v)
			preds = append(preds, func(a *Account) bool { return a.Domain != "" && a.Domain == d })
		case "display_name": // Account.matches_display_name: ILIKE 'value%'
			pat := strings.TrimSpace(v) + "%"
			preds = append(preds, func(a *Account) bool { return ilike(pat, a.DisplayName) })
		case "email": // User.matches_email: users.email ILIKE 'value%', % and _ not escaped
			pat := strings.TrimSpace(v) + "%"
			preds = append(preds, func(a *Account) bool { return a.Domain == "" && ilike(pat, a.Email) })
		case "ip": // User.matches_ip: user_ips.ip <<= value; invalid → Account.none
			pfx, ok := parseIPOrCIDR(v)
			preds = append(preds, func(a *Account) bool {
				if !ok || a.Domain != "" || a.IP == "" {
					return false
				}
				ip, err := netip.ParseAddr(a.IP)
				return err == nil && pfx.Contains(ip.Unmap())
			})
		}
	}
	return func(a *Account) bool {
		for _, p := range preds {
			if !p(a) {
				return false
			}
		}
		return true
	}, nil
}

func parseIPOrCIDR(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// ilike is PostgreSQL's ILIKE with the default escape character (backslash).
func ilike(pattern, s string) bool {
	return likeMatch([]rune(strings.ToLower(pattern)), []rune(strings.ToLower(s)))
}

func likeMatch(p, s []rune) bool {
	for len(p) > 0 {
		switch p[0] {
		case '%':
			for len(p) > 0 && p[0] == '%' {
				p = p[1:]
			}
			if len(p) == 0 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if likeMatch(p, s[i:]) {
					return true
				}
			}
			return false
		case '_':
			if len(s) == 0 {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			ch := p[0]
			if ch == '\\' && len(p) > 1 {
				p = p[1:]
				ch = p[0]
			}
			if len(s) == 0 || s[0] != ch {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return len(s) == 0
}

func (s *Server) accountIDsDesc() []int64 {
	ids := make([]int64, 0, len(s.accounts))
	for id := range s.accounts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	return ids
}

// listAccounts is #index of the v1/v2 controllers: authorize_if_got_token!, set_accounts
// (filters, order id DESC, to_a_paginated_by_id(limit_param(LIMIT))), Pundit, render,
// insert_pagination_headers.
func (s *Server) listAccounts(c *call, v2 bool) *response {
	if r := c.authorizeIfGotToken("admin:read", "admin:read:accounts"); r != nil {
		return r
	}
	pred, errResp := accountPredicate(translatedFilterParams(c.params, v2))
	if errResp != nil {
		return errResp
	}
	var desc []int64
	for _, id := range s.accountIDsDesc() {
		if pred(s.accounts[id]) {
			desc = append(desc, id)
		}
	}
	limit := limitParam(c.params, accountsLimit, 0)
	page := paginateIDs(desc, limit, c.params)
	if r := c.authorizePolicy(); r != nil { // AccountPolicy#index?
		return r
	}
	out := make([]adminAccountJSON, 0, len(page))
	for _, id := range page {
		out = append(out, s.adminAccountJSON(c, s.accounts[id]))
	}
	resp := jsonResponse(http.StatusOK, out)
	path, keep := "/api/v1/admin/accounts", append([]string{"limit"}, v1FilterParams...)
	if v2 {
		path, keep = "/api/v2/admin/accounts", append([]string{"limit"}, v2FilterParams...)
	}
	if !setPaginationHeaders(c, resp, path, keep, page, limit) {
		return internalError()
	}
	return resp
}

// findAccount is Account.find(params[:id]): the id is cast like ActiveRecord's integer type
// (String#to_i), and a missing record raises RecordNotFound → 404.
func (s *Server) findAccount(id string) (*Account, *response) {
	a, ok := s.accounts[rubyToI(id)]
	if !ok {
		return nil, notFound()
	}
	return a, nil
}

// showAccount is Api::V1::Admin::AccountsController#show.
func (s *Server) showAccount(c *call, id string) *response {
	if r := c.authorizeIfGotToken("admin:read", "admin:read:accounts"); r != nil {
		return r
	}
	a, r := s.findAccount(id)
	if r != nil {
		return r
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	return jsonResponse(http.StatusOK, s.adminAccountJSON(c, a))
}

// approveOrReject runs the before_actions shared by #approve and #reject:
// authorize_if_got_token!(admin:write, admin:write:accounts), set_account (404),
// require_local_account! (403 "Forbidden" unless local with a user), then
// UserPolicy#approve?/#reject? (role.can?(:manage_users) && !record.approved?, else Pundit's
// 403 "This action is not allowed").
func (s *Server) approveOrReject(c *call, id string) (*Account, *response) {
	if r := c.authorizeIfGotToken("admin:write", "admin:write:accounts"); r != nil {
		return nil, r
	}
	a, r := s.findAccount(id)
	if r != nil {
		return nil, r
	}
	if a.Domain != "" {
		return nil, requireLocalAccountForbidden()
	}
	if r := c.authorizePolicy(); r != nil {
		return nil, r
	}
	if a.Approved {
		return nil, forbidden()
	}
	return a, nil
}

// requireLocalAccountForbidden is Api::V1::Admin::AccountsController#require_local_account!
// calling ApplicationController#forbidden, which Api::BaseController#respond_with_error renders
// as { error: Rack::Utils::HTTP_STATUS_CODES[403] } (app/controllers/api/base_controller.rb),
// not with Pundit's message.
func requireLocalAccountForbidden() *response {
	return errorResponse(http.StatusForbidden, http.StatusText(http.StatusForbidden))
}

// approveAccount is #approve: User#approve! then the Admin::Account with approved true.
func (s *Server) approveAccount(c *call, id string) *response {
	a, r := s.approveOrReject(c, id)
	if r != nil {
		return r
	}
	a.Approved = true
	if a.Confirmed {
		// User#approve! calls prepare_new_user! for a confirmed user, which triggers
		// account.approved (app/models/user.rb).
		s.triggerWebhooks("account.approved", a)
	}
	return jsonResponse(http.StatusOK, s.adminAccountJSON(c, a))
}

// rejectAccount is #reject: DeleteAccountService hard-deletes the user and account rows
// synchronously, and render_empty answers 200 {} (since 4.0.0).
func (s *Server) rejectAccount(c *call, id string) *response {
	a, r := s.approveOrReject(c, id)
	if r != nil {
		return r
	}
	n, _ := strconv.ParseInt(a.ID, 10, 64)
	delete(s.accounts, n)
	return emptyResponse()
}

// JSON shapes: app/serializers/rest/admin/account_serializer.rb, rest/account_serializer.rb,
// rest/role_serializer.rb, rest/admin/ip_serializer.rb.

type adminAccountJSON struct {
	ID            string      `json:"id"`
	Username      string      `json:"username"`
	Domain        *string     `json:"domain"`
	CreatedAt     string      `json:"created_at"`
	Email         *string     `json:"email"`
	IP            *string     `json:"ip"`
	Confirmed     *bool       `json:"confirmed"`
	Suspended     bool        `json:"suspended"`
	Silenced      bool        `json:"silenced"`
	Sensitized    bool        `json:"sensitized"`
	Disabled      *bool       `json:"disabled"`
	Approved      *bool       `json:"approved"`
	Locale        *string     `json:"locale"`
	InviteRequest *string     `json:"invite_request"`
	IPs           []ipJSON    `json:"ips"`
	Account       accountJSON `json:"account"`
	Role          *roleJSON   `json:"role"`
}

type ipJSON struct {
	IP     string `json:"ip"`
	UsedAt string `json:"used_at"`
}

type roleJSON struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Permissions     string `json:"permissions"`
	Color           string `json:"color"`
	Highlighted     bool   `json:"highlighted"`
	CollectionLimit *int   `json:"collection_limit,omitempty"`
}

type accountJSON struct {
	ID             string  `json:"id"`
	Username       string  `json:"username"`
	Acct           string  `json:"acct"`
	DisplayName    string  `json:"display_name"`
	Locked         bool    `json:"locked"`
	Bot            bool    `json:"bot"`
	Discoverable   *bool   `json:"discoverable"`
	Indexable      bool    `json:"indexable"`
	Group          bool    `json:"group"`
	CreatedAt      string  `json:"created_at"`
	Note           string  `json:"note"`
	URL            string  `json:"url"`
	URI            string  `json:"uri"`
	Avatar         string  `json:"avatar"`
	AvatarStatic   string  `json:"avatar_static"`
	Header         string  `json:"header"`
	HeaderStatic   string  `json:"header_static"`
	FollowersCount int     `json:"followers_count"`
	FollowingCount int     `json:"following_count"`
	StatusesCount  int     `json:"statuses_count"`
	LastStatusAt   *string `json:"last_status_at"`
	Emojis         []any   `json:"emojis"`
	Fields         []any   `json:"fields"`
}

func (s *Server) localDomain(c *call) string {
	if s.opts.Domain != "" {
		return s.opts.Domain
	}
	return c.r.Host
}

func nonEmpty(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

func (s *Server) accountJSON(c *call, id, username, acctDomain, displayName string, created time.Time) accountJSON {
	local := s.localDomain(c)
	acct, host := username, local
	if acctDomain != "" {
		acct, host = username+"@"+acctDomain, acctDomain
	}
	return accountJSON{
		ID: id, Username: username, Acct: acct, DisplayName: displayName,
		// REST::AccountSerializer#created_at is object.created_at.midnight.as_json.
		CreatedAt:    railsTime(midnightUTC(created)),
		URL:          "https://" + host + "/@" + username,
		URI:          "https://" + host + "/users/" + username,
		Avatar:       "https://" + local + "/avatars/original/missing.png",
		AvatarStatic: "https://" + local + "/avatars/original/missing.png",
		Header:       "https://" + local + "/headers/original/missing.png",
		HeaderStatic: "https://" + local + "/headers/original/missing.png",
		Emojis:       []any{}, Fields: []any{},
	}
}

// everyoneRole is UserRole.everyone (id -99, permissions invite_users = 65536), which users
// without a role get (REST::RoleSerializer; collection_limit since 4.6).
func (s *Server) everyoneRole() *roleJSON {
	r := &roleJSON{ID: "-99", Name: "", Permissions: "65536", Color: "", Highlighted: false}
	if s.ver.atLeast(4, 6, 0) {
		r.CollectionLimit = ptr(10)
	}
	return r
}

func (s *Server) adminAccountJSON(c *call, a *Account) adminAccountJSON {
	j := adminAccountJSON{
		ID:         a.ID,
		Username:   a.Username,
		CreatedAt:  railsTime(a.CreatedAt),
		Suspended:  a.Suspended,
		Silenced:   a.Silenced,
		Sensitized: a.Sensitized,
		Account:    s.accountJSON(c, a.ID, a.Username, a.Domain, a.DisplayName, a.CreatedAt),
	}
	if a.Domain != "" {
		// Remote accounts have no user: the user_* delegations (allow_nil) are nil, ips is nil
		// and role is nil.
		j.Domain = ptr(a.Domain)
		return j
	}
	j.Email = ptr(a.Email)
	j.Confirmed = ptr(a.Confirmed)
	j.Disabled = ptr(a.Disabled)
	j.Approved = ptr(a.Approved)
	j.Locale = nonEmpty(a.Locale)
	j.InviteRequest = nonEmpty(a.InviteRequest)
	j.IPs = []ipJSON{}
	if a.IP != "" {
		j.IP = ptr(a.IP)
		j.IPs = append(j.IPs, ipJSON{IP: a.IP, UsedAt: railsTime(a.CreatedAt)})
	}
	j.Role = s.everyoneRole()
	return j
}

func midnightUTC(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
