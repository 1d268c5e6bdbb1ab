package mastosim

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/fediops/fediops/shared/domain"
)

// Admin domain blocks: app/controllers/api/v1/admin/domain_blocks_controller.rb,
// app/models/domain_block.rb, app/models/concerns/domain_normalizable.rb,
// app/validators/domain_validator.rb, app/serializers/rest/admin/domain_block_serializer.rb,
// app/serializers/rest/admin/existing_domain_block_error_serializer.rb.

const domainBlocksLimit = 100 // Api::V1::Admin::DomainBlocksController::LIMIT

// domainBlocksMaxLimit is MAX_LIMIT: 500 since 4.3.0 (#31253); before that limit_param's
// default*2 = 200.
func (s *Server) domainBlocksMaxLimit() int {
	if s.ver.atLeast(4, 3, 0) {
		return 500
	}
	return 2 * domainBlocksLimit
}

func validSeverity(v string) bool {
	return v == "silence" || v == "suspend" || v == "noop"
}

// severityValue is the DomainBlock severity enum's cast: a label stays, an integer value
// (silence: 0, suspend: 1, noop: 2) maps to its label, blank becomes nil ("").
func severityValue(v any) string {
	if n, ok := v.(json.Number); ok {
		switch n.String() {
		case "0":
			return "silence"
		case "1":
			return "suspend"
		case "2":
			return "noop"
		}
	}
	s := toS(v)
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return s
}

type domainBlockJSON struct {
	ID             string  `json:"id"`
	Domain         string  `json:"domain"`
	Digest         *string `json:"digest,omitempty"`
	CreatedAt      string  `json:"created_at"`
	Severity       string  `json:"severity"`
	RejectMedia    bool    `json:"reject_media"`
	RejectReports  bool    `json:"reject_reports"`
	PrivateComment *string `json:"private_comment"`
	PublicComment  *string `json:"public_comment"`
	Obfuscate      bool    `json:"obfuscate"`
}

// domainBlockJSON is REST::Admin::DomainBlockSerializer; digest exists since 4.2.9 (#29092).
func (s *Server) domainBlockJSON(b *domainBlock) domainBlockJSON {
	j := domainBlockJSON{
		ID: strconv.FormatInt(b.id, 10), Domain: b.domain, CreatedAt: railsTime(b.createdAt),
		Severity: b.severity, RejectMedia: b.rejectMedia, RejectReports: b.rejectReports,
		PrivateComment: b.privateComment, PublicComment: b.publicComment, Obfuscate: b.obfuscate,
	}
	if s.ver.atLeast(4, 2, 9) {
		j.Digest = ptr(domain.Digest(b.domain))
	}
	return j
}

// ruleFor is DomainBlock.rule_for (app/models/domain_block.rb): the block on the domain itself
// or its closest parent. It normalises domain.strip.delete('/') with Addressable, splits the
// host on dots (Ruby's split drops trailing empty fields), and returns
// where(domain: variants).by_domain_length.first; nil when Addressable or libidn raises.
func (s *Server) ruleFor(d string) *domainBlock {
	h, err := domain.Host(strings.ReplaceAll(domain.Strip(d), "/", ""))
	if err != nil {
		return nil
	}
	segments := strings.Split(h, ".")
	for len(segments) > 0 && segments[len(segments)-1] == "" {
		segments = segments[:len(segments)-1]
	}
	byDomain := make(map[string]*domainBlock, len(s.blocks))
	for _, b := range s.blocks {
		byDomain[b.domain] = b
	}
	for i := range segments {
		if b, ok := byDomain[strings.Join(segments[i:], ".")]; ok {
			return b
		}
	}
	return nil
}

// stricterThan is DomainBlock#stricter_than?.
func (b *domainBlock) stricterThan(other *domainBlock) bool {
	if b.severity == "suspend" {
		return true
	}
	if other.severity == "suspend" && (b.severity == "silence" || b.severity == "noop") {
		return false
	}
	if other.severity == "silence" && b.severity == "noop" {
		return false
	}
	return (b.rejectMedia || !other.rejectMedia) && (b.rejectReports || !other.rejectReports)
}

// assign applies the permitted attributes present in p (resource_params / domain_block_params).
func (b *domainBlock) assign(p params) {
	if v, ok := p.scalar("severity"); ok {
		b.severity = severityValue(v)
	}
	for _, f := range []struct {
		key string
		dst *bool
	}{{"reject_media", &b.rejectMedia}, {"reject_reports", &b.rejectReports}, {"obfuscate", &b.obfuscate}} {
		if v, ok := p.scalar(f.key); ok {
			// Simulator: blank values keep the column default instead of violating NOT NULL.
			if val, set := castBool(v); set {
				*f.dst = val
			}
		}
	}
	for _, f := range []struct {
		key string
		dst **string
	}{{"private_comment", &b.privateComment}, {"public_comment", &b.publicComment}} {
		if v, ok := p.scalar(f.key); ok {
			if v == nil {
				*f.dst = nil
			} else {
				*f.dst = ptr(toS(v))
			}
		}
	}
}

// validationErrors runs DomainBlock's validations in declaration order: the severity enum's
// inclusion validation (validate: true, 4.4+), then domain presence and DomainValidator, on the
// domain as DomainNormalizable left it (app/models/domain_block.rb).
func validationErrors(b *domainBlock, rawDomain string) []string {
	var errs []string
	if !validSeverity(b.severity) {
		errs = append(errs, "Severity is not included in the list")
	}
	if _, err := domain.Normalize(rawDomain); err != nil {
		if reasonOf(err) == domain.Blank {
			errs = append(errs, "Domain can't be blank")
		} else {
			errs = append(errs, "Domain is not a valid domain name")
		}
	}
	return errs
}

// reasonOf is the Mastodon step at which domain.Host or domain.Normalize refused a name.
func reasonOf(err error) domain.Reason {
	var e *domain.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return 0
}

func validationFailed(errs []string) *response {
	return errorResponse(http.StatusUnprocessableEntity, "Validation failed: "+strings.Join(errs, ", "))
}

func (s *Server) blockIDsDesc() []int64 {
	ids := make([]int64, 0, len(s.blocks))
	for id := range s.blocks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	return ids
}

// listDomainBlocks is #index: order(id: :desc).to_a_paginated_by_id(limit_param(LIMIT, MAX_LIMIT)),
// with Link headers whose PAGINATION_PARAMS are just limit.
func (s *Server) listDomainBlocks(c *call) *response {
	if r := c.authorizeIfGotToken("admin:read", "admin:read:domain_blocks"); r != nil {
		return r
	}
	limit := limitParam(c.params, domainBlocksLimit, s.domainBlocksMaxLimit())
	page := paginateIDs(s.blockIDsDesc(), limit, c.params)
	if r := c.authorizePolicy(); r != nil { // DomainBlockPolicy#index?
		return r
	}
	out := make([]domainBlockJSON, 0, len(page))
	for _, id := range page {
		out = append(out, s.domainBlockJSON(s.blocks[id]))
	}
	resp := jsonResponse(http.StatusOK, out)
	if !setPaginationHeaders(c, resp, "/api/v1/admin/domain_blocks", []string{"limit"}, page, limit) {
		return internalError()
	}
	return resp
}

// findBlock is DomainBlock.find(params[:id]).
func (s *Server) findBlock(id string) (*domainBlock, *response) {
	b, ok := s.blocks[rubyToI(id)]
	if !ok {
		return nil, notFound()
	}
	return b, nil
}

// showDomainBlock is #show.
func (s *Server) showDomainBlock(c *call, id string) *response {
	if r := c.authorizeIfGotToken("admin:read", "admin:read:domain_blocks"); r != nil {
		return r
	}
	b, r := s.findBlock(id)
	if r != nil {
		return r
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	return jsonResponse(http.StatusOK, s.domainBlockJSON(b))
}

type existingDomainBlockErrorJSON struct {
	Error               string          `json:"error"`
	ExistingDomainBlock domainBlockJSON `json:"existing_domain_block"`
}

// createDomainBlock is #create:
//
//	authorize :domain_block, :create?
//	@domain_block = DomainBlock.new(resource_params)
//	existing_domain_block = resource_params[:domain].present? ? DomainBlock.rule_for(resource_params[:domain]) : nil
//	return render json: existing_domain_block, serializer: REST::Admin::ExistingDomainBlockErrorSerializer, status: 422 if conflicts_with_existing_block?(@domain_block, existing_domain_block)
//	@domain_block.save!
//
// conflicts_with_existing_block? is existing.present? && (existing.domain ==
// TagManager.instance.normalize_domain(domain_block.domain) || !domain_block.stricter_than?(existing)).
// Before 4.2.9 (#30119) any existing rule conflicted.
//
// Two exceptions escape as 500s (Api::ErrorHandling rescues neither): normalize_domain in
// conflicts_with_existing_block? gets the raw parameter, which rule_for stripped but nothing
// else did, so when a block covers " bad.example " Addressable raises InvalidURIError on the
// whitespace (app/lib/tag_manager.rb); and DomainNormalizable#normalize_domain rescues
// InvalidURIError but not libidn's IdnaError (app/models/concerns/domain_normalizable.rb).
func (s *Server) createDomainBlock(c *call) *response {
	if r := c.authorizeIfGotToken("admin:write", "admin:write:domain_blocks"); r != nil {
		return r
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	rawDomain := c.params.str("domain")
	nb := &domainBlock{severity: "silence", createdAt: c.now.UTC()}
	nb.assign(c.params)

	var existing *domainBlock
	if c.params.present("domain") {
		existing = s.ruleFor(rawDomain)
	}
	if existing != nil {
		conflict := true
		if s.ver.atLeast(4, 2, 9) {
			norm, err := domain.Host(strings.TrimSuffix(rawDomain, "/"))
			if err != nil {
				return internalError()
			}
			conflict = existing.domain == norm || !nb.stricterThan(existing)
		}
		if conflict {
			return jsonResponse(http.StatusUnprocessableEntity, existingDomainBlockErrorJSON{
				// admin.domain_blocks.existing_domain_block in config/locales/en.yml
				Error:               "You have already imposed stricter limits on " + existing.domain + ".",
				ExistingDomainBlock: s.domainBlockJSON(existing),
			})
		}
	}
	norm, err := domain.Normalize(rawDomain) // save!: DomainNormalizable#normalize_domain
	if reasonOf(err) == domain.BadIDNA {
		return internalError()
	}
	if errs := validationErrors(nb, rawDomain); len(errs) > 0 {
		return validationFailed(errs)
	}
	nb.domain = norm
	s.lastBlockID++
	nb.id = s.lastBlockID
	s.blocks[nb.id] = nb
	return jsonResponse(http.StatusOK, s.domainBlockJSON(nb))
}

// updateDomainBlock is #update (PUT and PATCH): update!(domain_block_params), which permits
// severity, reject_media, reject_reports, private_comment, public_comment and obfuscate; a
// domain parameter is silently ignored.
func (s *Server) updateDomainBlock(c *call, id string) *response {
	if r := c.authorizeIfGotToken("admin:write", "admin:write:domain_blocks"); r != nil {
		return r
	}
	b, r := s.findBlock(id)
	if r != nil {
		return r
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	updated := *b
	updated.assign(c.params)
	if errs := validationErrors(&updated, updated.domain); len(errs) > 0 {
		return validationFailed(errs)
	}
	*b = updated
	return jsonResponse(http.StatusOK, s.domainBlockJSON(b))
}

// destroyDomainBlock is #destroy: UnblockDomainService, then render_empty (200 {}).
func (s *Server) destroyDomainBlock(c *call, id string) *response {
	if r := c.authorizeIfGotToken("admin:write", "admin:write:domain_blocks"); r != nil {
		return r
	}
	b, r := s.findBlock(id)
	if r != nil {
		return r
	}
	if r := c.authorizePolicy(); r != nil {
		return r
	}
	delete(s.blocks, b.id)
	return emptyResponse()
}

// publicDomain is DomainBlock#public_domain: with obfuscate, every character at index i with
// length/4 < i < length - length/4 that is not a dot becomes '*'.
func publicDomain(b *domainBlock) string {
	if !b.obfuscate {
		return b.domain
	}
	r := []rune(b.domain)
	n := len(r)
	visible := n / 4
	for i, ch := range r {
		if i > visible && i < n-visible && ch != '.' {
			r[i] = '*'
		}
	}
	return string(r)
}

type publicDomainBlockJSON struct {
	Domain   string  `json:"domain"`
	Digest   string  `json:"digest"`
	Severity string  `json:"severity"`
	Comment  *string `json:"comment"`
}

// publicDomainBlocks is Api::V1::Instances::DomainBlocksController#index:
// DomainBlock.with_user_facing_limitations.by_severity (silence then suspend, each by domain),
// REST::DomainBlockSerializer, `head 404` unless Setting.show_domain_blocks allows it.
func (s *Server) publicDomainBlocks(c *call) *response {
	signedIn := c.token != nil
	switch s.opts.ShowDomainBlocks {
	case "all":
	case "users":
		if !signedIn {
			return headResponse(http.StatusNotFound)
		}
	default:
		return headResponse(http.StatusNotFound)
	}
	rationale := s.opts.ShowDomainBlocksRationale == "all" || (s.opts.ShowDomainBlocksRationale == "users" && signedIn)
	var list []*domainBlock
	for _, b := range s.blocks {
		if b.severity == "silence" || b.severity == "suspend" {
			list = append(list, b)
		}
	}
	rank := map[string]int{"noop": 0, "silence": 1, "suspend": 2}
	sort.Slice(list, func(i, j int) bool {
		if rank[list[i].severity] != rank[list[j].severity] {
			return rank[list[i].severity] < rank[list[j].severity]
		}
		return list[i].domain < list[j].domain
	})
	out := make([]publicDomainBlockJSON, 0, len(list))
	for _, b := range list {
		j := publicDomainBlockJSON{Domain: publicDomain(b), Digest: domain.Digest(b.domain), Severity: b.severity}
		if rationale {
			j.Comment = b.publicComment
		}
		out = append(out, j)
	}
	resp := jsonResponse(http.StatusOK, out)
	resp.header.Set("Cache-Control", "max-age=180, public")
	return resp
}
