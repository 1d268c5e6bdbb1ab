package mastodon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// EmailDomainBlock is an Admin::EmailDomainBlock: sign-ups with an address at the domain (or
// a subdomain of it), or whose mail servers are named under it, are refused, or with
// AllowWithApproval need an admin's approval.
type EmailDomainBlock struct {
	ID        string    `json:"id"`
	Domain    string    `json:"domain"`
	CreatedAt time.Time `json:"created_at"`
	// AllowWithApproval is nil when the server does not send it (before Mastodon 4.3).
	AllowWithApproval *bool `json:"allow_with_approval,omitempty"`
}

// RequiresApproval reports whether the block only makes sign-ups wait for approval.
func (b EmailDomainBlock) RequiresApproval() bool {
	return b.AllowWithApproval != nil && *b.AllowWithApproval
}

const emailDomainBlocksPath = "/api/v1/admin/email_domain_blocks"

// EmailDomainBlockPageLimit is the largest page Mastodon gives: limit_param(LIMIT) with LIMIT
// 100 and no maximum is capped at twice the default.
const EmailDomainBlockPageLimit = 200

// EmailDomainBlocks reports whether the server has the email-domain block admin API:
// Mastodon from 4.0.0. GoToSocial has none.
func (s Server) EmailDomainBlocks() bool {
	return s.Software == Mastodon && s.AtLeast(4, 0, 0)
}

// EmailDomainBlockApproval reports whether the server's email-domain blocks can require
// approval instead of refusing (allow_with_approval): Mastodon from 4.3.0.
func (s Server) EmailDomainBlockApproval() bool {
	return s.Software == Mastodon && s.AtLeast(4, 3, 0)
}

// supportsEmailBlocks returns ErrUnsupported for servers without the API, without a request
// beyond the cached server detection.
func (c *Client) supportsEmailBlocks(ctx context.Context, what string) error {
	srv, err := c.Server(ctx)
	if err != nil {
		return err
	}
	if !srv.EmailDomainBlocks() {
		return fmt.Errorf("%s on %s: %w", what, srv, ErrUnsupported)
	}
	return nil
}

// EmailDomainBlocksPage returns one page of email-domain blocks (newest first, children that
// the admin UI added for MX hosts included) and the cursor of the next page ("" at the end).
// Pass cursor "" for the first page. Servers without the API answer ErrUnsupported.
func (c *Client) EmailDomainBlocksPage(ctx context.Context, cursor string) ([]EmailDomainBlock, string, error) {
	if err := c.supportsEmailBlocks(ctx, "list email-domain blocks"); err != nil {
		return nil, "", err
	}
	r := request{method: http.MethodGet, path: emailDomainBlocksPath, query: url.Values{"limit": {strconv.Itoa(EmailDomainBlockPageLimit)}}}
	if cursor != "" {
		if !strings.HasPrefix(cursor, emailDomainBlocksPath+"?") {
			return nil, "", fmt.Errorf("list email-domain blocks: cursor %q is not a page of this list", cursor)
		}
		r = request{method: http.MethodGet, path: cursor}
	}
	var page []EmailDomainBlock
	resp, err := c.do(ctx, r, &page)
	if StatusOf(err) == http.StatusNotFound && cursor == "" {
		return nil, "", fmt.Errorf("list email-domain blocks: %w", ErrUnsupported)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list email-domain blocks: %w", err)
	}
	next := resp.next
	if len(page) == 0 {
		next = ""
	}
	return page, next, nil
}

// AllEmailDomainBlocks returns every email-domain block, following pagination to the end.
func (c *Client) AllEmailDomainBlocks(ctx context.Context) ([]EmailDomainBlock, error) {
	all, err := Pages(ctx, c.EmailDomainBlocksPage)
	if errors.Is(err, ErrRepeatedCursor) {
		return all, fmt.Errorf("list email-domain blocks: %w", err)
	}
	return all, err
}

// CreateEmailDomainBlock blocks sign-ups from domain (and its subdomains); with
// allowWithApproval they need approval instead (Mastodon 4.3+; the parameter is only sent when
// set). Mastodon answers 422 when the domain is blocked already, and for a blank or invalid
// domain alike ("Validation failed: ..."): read the list back to tell them apart. A POST whose
// answer was lost is an *AmbiguousError.
func (c *Client) CreateEmailDomainBlock(ctx context.Context, domain string, allowWithApproval bool) (EmailDomainBlock, error) {
	if err := c.supportsEmailBlocks(ctx, "create email-domain block"); err != nil {
		return EmailDomainBlock{}, err
	}
	body := map[string]any{"domain": domain}
	if allowWithApproval {
		body["allow_with_approval"] = true
	}
	var b EmailDomainBlock
	_, err := c.do(ctx, request{method: http.MethodPost, path: emailDomainBlocksPath, body: body}, &b)
	return b, err
}

// DeleteEmailDomainBlock removes block id (with the MX-host blocks the admin UI made under it).
func (c *Client) DeleteEmailDomainBlock(ctx context.Context, id string) error {
	if err := c.supportsEmailBlocks(ctx, "delete email-domain block"); err != nil {
		return err
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: emailDomainBlocksPath + "/" + url.PathEscape(id)}, nil)
	return err
}

// ProbeEmailDomainBlocks is registration triage's read of the email-domain blocks.
var ProbeEmailDomainBlocks = Probe{Path: emailDomainBlocksPath + "?limit=1", Scope: "admin:read:email_domain_blocks", Permission: "Manage Blocks"}
