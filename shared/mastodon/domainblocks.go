package mastodon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DomainBlock is an Admin::DomainBlock. On GoToSocial Severity is "" (every block is a
// suspension) and the reject flags are absent.
type DomainBlock struct {
	ID             string    `json:"id"`
	Domain         string    `json:"domain"`
	Digest         string    `json:"digest,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	Severity       string    `json:"severity"`
	RejectMedia    bool      `json:"reject_media"`
	RejectReports  bool      `json:"reject_reports"`
	PrivateComment string    `json:"private_comment"`
	PublicComment  string    `json:"public_comment"`
	Obfuscate      bool      `json:"obfuscate"`
}

// DomainBlockParams are the fields of a create or update. Nil fields are not sent, so an
// update changes only what it names.
type DomainBlockParams struct {
	Domain         string  `json:"domain,omitempty"`
	Severity       *string `json:"severity,omitempty"`
	RejectMedia    *bool   `json:"reject_media,omitempty"`
	RejectReports  *bool   `json:"reject_reports,omitempty"`
	PrivateComment *string `json:"private_comment,omitempty"`
	PublicComment  *string `json:"public_comment,omitempty"`
	Obfuscate      *bool   `json:"obfuscate,omitempty"`
}

// ConflictError is Mastodon's 422 answer to creating a block where one exists: for the same
// domain, or a parent block that the new one would not be stricter than.
type ConflictError struct {
	Existing DomainBlock
	Message  string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("domain block conflicts with the existing block on %s: %s", e.Existing.Domain, e.Message)
}

const domainBlocksPath = "/api/v1/admin/domain_blocks"

// DomainBlocks returns every admin domain block, following pagination, with the largest page
// size the server allows. It also returns the number of pages read.
func (c *Client) DomainBlocks(ctx context.Context) ([]DomainBlock, int, error) {
	srv, err := c.Server(ctx)
	if err != nil {
		return nil, 0, err
	}
	q := url.Values{}
	if srv.Software == Mastodon {
		q.Set("limit", strconv.Itoa(srv.DomainBlockPageLimit()))
	}
	r := request{method: http.MethodGet, path: domainBlocksPath, query: q}
	var all []DomainBlock
	seen := map[string]bool{}
	pages := 0
	for {
		var page []DomainBlock
		resp, err := c.do(ctx, r, &page)
		if err != nil {
			return all, pages, fmt.Errorf("list domain blocks: %w", err)
		}
		pages++
		all = append(all, page...)
		if resp.next == "" || len(page) == 0 || srv.Software == GoToSocial {
			return all, pages, nil
		}
		if seen[resp.next] {
			return all, pages, errors.New("list domain blocks: the server repeated a page cursor")
		}
		seen[resp.next] = true
		r = request{method: http.MethodGet, path: resp.next}
	}
}

// CreateDomainBlock creates a block. A 422 naming an existing block is returned as a
// *ConflictError. p.Domain is sent as given: callers pass names normalised by shared/domain
// (Mastodon 4.3 answers 500 to a name with surrounding whitespace that an existing block
// covers).
func (c *Client) CreateDomainBlock(ctx context.Context, p DomainBlockParams) (DomainBlock, error) {
	var b DomainBlock
	_, err := c.do(ctx, request{method: http.MethodPost, path: domainBlocksPath, body: p}, &b)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
		var body struct {
			Error    string       `json:"error"`
			Existing *DomainBlock `json:"existing_domain_block"`
		}
		if json.Unmarshal(ae.Body, &body) == nil && body.Existing != nil {
			return DomainBlock{}, &ConflictError{Existing: *body.Existing, Message: body.Error}
		}
	}
	return b, err
}

// UpdateDomainBlock changes the given fields of block id (PUT). GoToSocial before 0.19 has no
// PUT: the answer is ErrUnsupported.
func (c *Client) UpdateDomainBlock(ctx context.Context, id string, p DomainBlockParams) (DomainBlock, error) {
	p.Domain = "" // Mastodon ignores it; never suggest it can change
	var b DomainBlock
	_, err := c.do(ctx, request{method: http.MethodPut, path: domainBlocksPath + "/" + url.PathEscape(id), body: p}, &b)
	if s := StatusOf(err); s == http.StatusMethodNotAllowed || s == http.StatusNotImplemented {
		return b, fmt.Errorf("update domain block: %w", ErrUnsupported)
	}
	return b, err
}

// DeleteDomainBlock removes block id.
func (c *Client) DeleteDomainBlock(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: domainBlocksPath + "/" + url.PathEscape(id)}, nil)
	return err
}

// Follows are the measures that say whether blocking a domain would cut local users off.
type Follows struct {
	// Follows is how many follows local accounts have of accounts on the domain.
	Follows int64
	// Followers is how many follows accounts on the domain have of local accounts.
	Followers int64
}

// DomainFollows asks POST /api/v1/admin/measures for instance_follows and
// instance_followers of domain and its subdomains between start and end (totals are all-time).
// Servers without measures (GoToSocial) answer ErrUnsupported.
func (c *Client) DomainFollows(ctx context.Context, domain string, start, end time.Time) (Follows, error) {
	sel := map[string]any{"domain": domain, "include_subdomains": true}
	body := map[string]any{
		"keys":               []string{"instance_follows", "instance_followers"},
		"start_at":           start.UTC().Format("2006-01-02"),
		"end_at":             end.UTC().Format("2006-01-02"),
		"instance_follows":   sel,
		"instance_followers": sel,
	}
	var out []struct {
		Key   string          `json:"key"`
		Total json.RawMessage `json:"total"`
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/admin/measures", body: body}, &out)
	if s := StatusOf(err); s == http.StatusNotFound || s == http.StatusMethodNotAllowed || s == http.StatusNotImplemented {
		return Follows{}, fmt.Errorf("measures: %w", ErrUnsupported)
	}
	if err != nil {
		return Follows{}, err
	}
	var f Follows
	found := 0
	for _, m := range out {
		n, err := parseTotal(m.Total)
		if err != nil {
			return Follows{}, fmt.Errorf("measures: %s total: %w", m.Key, err)
		}
		switch m.Key {
		case "instance_follows":
			f.Follows, found = n, found+1
		case "instance_followers":
			f.Followers, found = n, found+1
		}
	}
	if found != 2 {
		return Follows{}, errors.New("measures: answer lacks instance_follows or instance_followers")
	}
	return f, nil
}

// parseTotal reads a measure total, which Mastodon sends as a string ("12").
func parseTotal(raw json.RawMessage) (int64, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strconv.ParseInt(s, 10, 64)
	}
	var n int64
	err := json.Unmarshal(raw, &n)
	return n, err
}

// PublicDomainBlock is an entry of GET /api/v1/instance/domain_blocks.
type PublicDomainBlock struct {
	Domain   string `json:"domain"`
	Digest   string `json:"digest"`
	Severity string `json:"severity"`
	Comment  string `json:"comment"`
}

// PublicDomainBlocks returns the server's public list of limited and suspended domains.
func (c *Client) PublicDomainBlocks(ctx context.Context) ([]PublicDomainBlock, error) {
	var out []PublicDomainBlock
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/instance/domain_blocks"}, &out)
	return out, err
}
