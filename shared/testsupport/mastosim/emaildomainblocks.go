package mastosim

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/fediops/fediops/shared/domain"
)

// Admin email-domain blocks, as in Mastodon 4.3:
// app/controllers/api/v1/admin/email_domain_blocks_controller.rb (index, show, create,
// destroy; LIMIT 100, limit_param without a maximum, so at most 200; PAGINATION_PARAMS limit),
// app/models/email_domain_block.rb (DomainNormalizable, validates :domain presence,
// uniqueness, domain; belongs_to :parent, has_many :children dependent: :destroy),
// app/serializers/rest/admin/email_domain_block_serializer.rb (id, domain, created_at,
// history, allow_with_approval) and app/controllers/admin/email_domain_blocks_controller.rb
// (the admin UI's create, which adds a child block, with the parent's allow_with_approval,
// for every resolved MX host it is given that is not blocked yet).
//
// Versions: the API exists from 4.0.0, show from 4.1.0 (the documentation's version
// history); allow_with_approval is accepted and serialised from 4.3.0, the release of
// approval-required email-domain blocks (#28468). Simulator: which release first permitted
// the parameter in the API controller is not confirmed by the sources read; 4.3.0 is
// assumed.

const emailDomainBlocksLimit = 100 // Api::V1::Admin::EmailDomainBlocksController::LIMIT

// EmailDomainBlock is an email-domain block as stored by the server.
type EmailDomainBlock struct {
	ID                string
	Domain            string
	AllowWithApproval bool
	// ParentID is set on the blocks the admin UI adds for a domain's MX hosts.
	ParentID  string
	CreatedAt time.Time
	// OtherDomains, when seeding, are the MX hosts the admin UI resolved and blocks as
	// children of this block (those already blocked are skipped, as Mastodon does).
	OtherDomains []string
}

type emailDomainBlock struct {
	id                int64
	domain            string
	allowWithApproval bool
	parentID          int64
	createdAt         time.Time
}

func (s *Server) emailBlocksSupported() bool { return s.ver.atLeast(4, 0, 0) }
func (s *Server) emailBlocksShow() bool      { return s.ver.atLeast(4, 1, 0) }
func (s *Server) emailBlocksApproval() bool  { return s.ver.atLeast(4, 3, 0) }

// AddEmailDomainBlock seeds a block as an admin makes it in the admin UI and returns its id:
// the domain, then a child block for each of b.OtherDomains not blocked yet. It panics on an
// invalid or already blocked domain.
func (s *Server) AddEmailDomainBlock(b EmailDomainBlock) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := domain.Normalize(b.Domain)
	if err != nil {
		panic(fmt.Sprintf("mastosim: AddEmailDomainBlock: %v", err))
	}
	if s.emailBlockByDomain(d) != nil {
		panic(fmt.Sprintf("mastosim: AddEmailDomainBlock: %s is already blocked", d))
	}
	created := b.CreatedAt
	if created.IsZero() {
		created = s.clk.Now()
	}
	parent := s.addEmailBlock(d, b.AllowWithApproval, 0, created)
	for _, o := range b.OtherDomains {
		od, err := domain.Normalize(o)
		if err != nil || s.emailBlockByDomain(od) != nil {
			continue // `next if EmailDomainBlock.exists?(domain: domain)`
		}
		s.addEmailBlock(od, b.AllowWithApproval, parent.id, created)
	}
	return strconv.FormatInt(parent.id, 10)
}

// EmailDomainBlocks returns every email-domain block, children included, in id order.
func (s *Server) EmailDomainBlocks() []EmailDomainBlock {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.emailBlockIDsDesc()
	out := make([]EmailDomainBlock, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		b := s.emailBlocks[ids[i]]
		e := EmailDomainBlock{ID: strconv.FormatInt(b.id, 10), Domain: b.domain, AllowWithApproval: b.allowWithApproval, CreatedAt: b.createdAt}
		if b.parentID != 0 {
			e.ParentID = strconv.FormatInt(b.parentID, 10)
		}
		out = append(out, e)
	}
	return out
}

func (s *Server) addEmailBlock(d string, approval bool, parent int64, created time.Time) *emailDomainBlock {
	s.lastEmailBlockID++
	b := &emailDomainBlock{id: s.lastEmailBlockID, domain: d, allowWithApproval: approval, parentID: parent, createdAt: created.UTC()}
	s.emailBlocks[b.id] = b
	return b
}

func (s *Server) emailBlockByDomain(d string) *emailDomainBlock {
	for _, b := range s.emailBlocks {
		if b.domain == d {
			return b
		}
	}
	return nil
}

func (s *Server) emailBlockIDsDesc() []int64 {
	ids := make([]int64, 0, len(s.emailBlocks))
	for id := range s.emailBlocks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	return ids
}

type emailDomainBlockHistoryJSON struct {
	Day      string `json:"day"`
	Accounts string `json:"accounts"`
	Uses     string `json:"uses"`
}

type emailDomainBlockJSON struct {
	ID                string                        `json:"id"`
	Domain            string                        `json:"domain"`
	CreatedAt         string                        `json:"created_at"`
	History           []emailDomainBlockHistoryJSON `json:"history"`
	AllowWithApproval *bool                         `json:"allow_with_approval,omitempty"`
}

// emailDomainBlockJSON is REST::Admin::EmailDomainBlockSerializer. history is the 7 days of
// Trends::History, newest first, counts as strings. Simulator: sign-ups are not modelled, so
// the counts are always "0".
func (s *Server) emailDomainBlockJSON(c *call, b *emailDomainBlock) emailDomainBlockJSON {
	j := emailDomainBlockJSON{ID: strconv.FormatInt(b.id, 10), Domain: b.domain, CreatedAt: railsTime(b.createdAt)}
	day := midnightUTC(c.now)
	for i := 0; i < 7; i++ {
		j.History = append(j.History, emailDomainBlockHistoryJSON{Day: strconv.FormatInt(day.AddDate(0, 0, -i).Unix(), 10), Accounts: "0", Uses: "0"})
	}
	if s.emailBlocksApproval() {
		j.AllowWithApproval = ptr(b.allowWithApproval)
	}
	return j
}

// listEmailDomainBlocks is #index: EmailDomainBlock.order(id: :desc)
// .to_a_paginated_by_id(limit_param(LIMIT), ...) with every row (children too), and Link
// headers keeping limit.
func (s *Server) listEmailDomainBlocks(c *call) *response {
	if r := c.authorizeIfGotToken("admin:read", "admin:read:email_domain_blocks"); r != nil {
		return r
	}
	limit := limitParam(c.params, emailDomainBlocksLimit, 0)
	page := paginateIDs(s.emailBlockIDsDesc(), limit, c.params)
	if r := c.authorizePolicy(); r != nil { // EmailDomainBlockPolicy#index?
		return r
	}
	out := make([]emailDomainBlockJSON, 0, len(page))
	for _, id := range page {
		out = append(out, s.emailDomainBlockJSON(c, s.emailBlocks[id]))
	}
	resp := jsonResponse(http.StatusOK, out)
	if !setPaginationHeaders(c, resp, "/api/v1/admin/email_domain_blocks", []string{"limit"}, page, limit) {
		return internalError()
	}
	return resp
}

// findEmailBlock is EmailDomainBlock.find(params[:id]) (a before_action: 404 before the policy).
func (s *Server) findEmailBlock(id string) (*emailDomainBlock, *response) {
	b, ok := s.emailBlocks[rubyToI(id)]
	if !ok {
		return nil, notFound()
	}
	return b, nil
}

// showEmailDomainBlock is #show.
func (s *Server) showEmailDomainBlock(c *call, id string) *response {
	if r := c.authorizeIfGotToken("admin:read", "admin:read:email_domain_blocks"); r != nil {
		return r
	}
	b, r := s.findEmailBlock(id)
	if r != nil {
		return r
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	return jsonResponse(http.StatusOK, s.emailDomainBlockJSON(c, b))
}

// createEmailDomainBlock is #create: authorize, EmailDomainBlock.create!(params.permit(:domain,
// :allow_with_approval)). Validation errors (blank, taken, invalid) are
// ActiveRecord::RecordInvalid, which Api::ErrorHandling renders as
// 422 {"error":"Validation failed: ..."}. The API resolves no MX records: only the admin UI
// and tootctl add child blocks.
func (s *Server) createEmailDomainBlock(c *call) *response {
	if r := c.authorizeIfGotToken("admin:write", "admin:write:email_domain_blocks"); r != nil {
		return r
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	raw := c.params.str("domain")
	norm, err := domain.Normalize(raw)
	var errs []string
	switch {
	case reasonOf(err) == domain.Blank:
		errs = append(errs, "Domain can't be blank")
	case err != nil:
		errs = append(errs, "Domain is not a valid domain name")
	case s.emailBlockByDomain(norm) != nil:
		errs = append(errs, "Domain has already been taken")
	}
	if len(errs) > 0 {
		return validationFailed(errs)
	}
	approval := false
	if v, ok := c.params.scalar("allow_with_approval"); ok && s.emailBlocksApproval() {
		// Simulator: a blank value keeps the column default instead of violating NOT NULL.
		if val, set := castBool(v); set {
			approval = val
		}
	}
	b := s.addEmailBlock(norm, approval, 0, c.now)
	return jsonResponse(http.StatusOK, s.emailDomainBlockJSON(c, b))
}

// destroyEmailDomainBlock is #destroy: destroy! (children go with their parent, dependent:
// :destroy), then render_empty.
func (s *Server) destroyEmailDomainBlock(c *call, id string) *response {
	if r := c.authorizeIfGotToken("admin:write", "admin:write:email_domain_blocks"); r != nil {
		return r
	}
	b, r := s.findEmailBlock(id)
	if r != nil {
		return r
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	for cid, child := range s.emailBlocks {
		if child.parentID == b.id {
			delete(s.emailBlocks, cid)
		}
	}
	delete(s.emailBlocks, b.id)
	return emptyResponse()
}

// routeEmailDomainBlocks routes /api/v1/admin/email_domain_blocks[/:id]; nil when the path is
// not one of them (or the version has no such endpoint).
func (s *Server) routeEmailDomainBlocks(c *call, p string, seg []string) *response {
	const base = "/api/v1/admin/email_domain_blocks"
	if !s.emailBlocksSupported() {
		return nil
	}
	switch {
	case p == base && c.method == http.MethodGet:
		return s.listEmailDomainBlocks(c)
	case p == base && c.method == http.MethodPost:
		return s.createEmailDomainBlock(c)
	case len(seg) == 5 && p == base+"/"+seg[4] && c.method == http.MethodGet && s.emailBlocksShow():
		return s.showEmailDomainBlock(c, seg[4])
	case len(seg) == 5 && p == base+"/"+seg[4] && c.method == http.MethodDelete:
		return s.destroyEmailDomainBlock(c, seg[4])
	}
	return nil
}
