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

// AdminAccount is an account as the admin API shows it (Admin::Account). Only the fields
// fediops uses are decoded.
type AdminAccount struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Domain    *string   `json:"domain"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	Confirmed bool      `json:"confirmed"`
	Approved  bool      `json:"approved"`
	Disabled  bool      `json:"disabled"`
	Suspended bool      `json:"suspended"`
	Locale    string    `json:"locale"`
}

// AccountFilter selects accounts for AdminAccounts (GET /api/v2/admin/accounts).
type AccountFilter struct {
	Origin string // "local" or "remote"
	Status string // "pending", "active", …
	Limit  int    // page size; Mastodon allows up to 200
}

func (f AccountFilter) query() url.Values {
	q := url.Values{}
	if f.Origin != "" {
		q.Set("origin", f.Origin)
	}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

const adminAccountsPath = "/api/v2/admin/accounts"

// AdminAccountsPage returns one page of accounts and the cursor of the next page ("" at the
// end). Pass cursor "" for the first page.
func (c *Client) AdminAccountsPage(ctx context.Context, f AccountFilter, cursor string) ([]AdminAccount, string, error) {
	r := request{method: http.MethodGet, path: adminAccountsPath, query: f.query()}
	if cursor != "" {
		r = request{method: http.MethodGet, path: cursor}
	}
	var page []AdminAccount
	resp, err := c.do(ctx, r, &page)
	if err != nil {
		return nil, "", err
	}
	next := resp.next
	if next != "" && !strings.HasPrefix(next, adminAccountsPath+"?") && len(page) > 0 {
		// Mastodon before 4.1.3 pointed v2 Link headers at v1, whose defaults differ
		// (#25477): build the next page from our own filter instead.
		q := f.query()
		q.Set("max_id", page[len(page)-1].ID)
		next = adminAccountsPath + "?" + q.Encode()
	}
	if len(page) == 0 {
		next = "" // GoToSocial emits next links past the end
	}
	return page, next, nil
}

// AdminAccounts returns every account matching f, following pagination to the end.
func (c *Client) AdminAccounts(ctx context.Context, f AccountFilter) ([]AdminAccount, error) {
	all, err := Pages(ctx, func(ctx context.Context, cursor string) ([]AdminAccount, string, error) {
		return c.AdminAccountsPage(ctx, f, cursor)
	})
	if errors.Is(err, ErrRepeatedCursor) {
		return all, fmt.Errorf("list accounts: %w", err)
	}
	return all, err
}

// AdminAccount returns one account (GET /api/v1/admin/accounts/:id).
func (c *Client) AdminAccount(ctx context.Context, id string) (AdminAccount, error) {
	var a AdminAccount
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/admin/accounts/" + url.PathEscape(id)}, &a)
	return a, err
}

// Approve approves a pending account (POST /api/v1/admin/accounts/:id/approve).
// Mastodon answers 403 if it is already approved, GoToSocial 200; a deleted (rejected)
// account is 404 on both.
func (c *Client) Approve(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/admin/accounts/" + url.PathEscape(id) + "/approve"}, nil)
	return err
}

// Reject rejects (deletes) a pending account (POST /api/v1/admin/accounts/:id/reject).
// Mastodon answers 403 if it was approved meanwhile and 404 if already gone; GoToSocial 422
// and 404.
func (c *Client) Reject(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/admin/accounts/" + url.PathEscape(id) + "/reject"}, nil)
	return err
}
