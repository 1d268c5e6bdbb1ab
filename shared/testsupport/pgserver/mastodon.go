package pgserver

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed mastodon_schema.sql
var mastodonSchema string

// Sample describes the Mastodon data SeedMastodon writes.
type Sample struct {
	// SchemaVersion is the newest schema_migrations.version (three older ones are added).
	SchemaVersion string
	// Accounts, Users and Statuses are how many rows to write (Users ≤ Accounts).
	Accounts, Users, Statuses int
	// NewestAccount and NewestStatus are the created_at of the newest rows; older rows are
	// spread over the preceding days.
	NewestAccount, NewestStatus time.Time
	// Future adds rows to statuses dated after NewestStatus by this much (a remote server's
	// clock running ahead), 0 for none.
	Future time.Duration
}

// DefaultSample is a small, healthy instance whose newest rows are at newest.
func DefaultSample(newest time.Time) Sample {
	return Sample{
		SchemaVersion: "20251217091936",
		Accounts:      12, Users: 5, Statuses: 40,
		NewestAccount: newest.Add(-35 * time.Minute),
		NewestStatus:  newest,
	}
}

// Snowflake returns a Mastodon-style id for t: milliseconds since the Unix epoch in the high
// 48 bits, seq in the low 16 (lib/mastodon/snowflake.rb).
func Snowflake(t time.Time, seq int) int64 {
	return t.UnixMilli()<<16 | int64(seq&0xffff)
}

// SeedMastodon creates the Mastodon schema subset in database and fills it as s says.
func (srv *Server) SeedMastodon(ctx context.Context, database string, s Sample) error {
	conn, err := srv.Admin(ctx, database)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return SeedMastodon(ctx, conn, s)
}

// SeedMastodon creates the Mastodon schema subset on conn and fills it as s says.
func SeedMastodon(ctx context.Context, conn *pgx.Conn, s Sample) error {
	if _, err := conn.Exec(ctx, mastodonSchema); err != nil {
		return fmt.Errorf("create the Mastodon schema: %w", err)
	}
	if s.SchemaVersion != "" {
		for _, v := range []string{"20230101000000", "20240101000000", "20250101000000", s.SchemaVersion} {
			if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING", v); err != nil {
				return err
			}
		}
	}
	var accountIDs []int64
	for i := 0; i < s.Accounts; i++ {
		at := s.NewestAccount.Add(-time.Duration(s.Accounts-1-i) * 7 * time.Hour).UTC()
		id := Snowflake(at, i)
		var domain any
		if i%3 == 2 {
			domain = "remote.example"
		}
		if _, err := conn.Exec(ctx, `INSERT INTO accounts (id, username, domain, created_at, updated_at, uri)
			VALUES ($1, $2, $3, $4, $4, $5)`, id, fmt.Sprintf("user%d", i), domain, at, fmt.Sprintf("https://example.social/users/user%d", i)); err != nil {
			return err
		}
		accountIDs = append(accountIDs, id)
	}
	for i := 0; i < s.Users && i < len(accountIDs); i++ {
		if _, err := conn.Exec(ctx, `INSERT INTO users (email, created_at, updated_at, account_id, confirmed_at)
			VALUES ($1, now(), now(), $2, now())`, fmt.Sprintf("user%d@example.org", i), accountIDs[i]); err != nil {
			return err
		}
	}
	if len(accountIDs) == 0 {
		return nil
	}
	insertStatus := func(at time.Time, seq int) error {
		at = at.UTC()
		_, err := conn.Exec(ctx, `INSERT INTO statuses (id, text, created_at, updated_at, local, account_id)
			VALUES ($1, $2, $3, $3, true, $4)`, Snowflake(at, seq), fmt.Sprintf("post %d", seq), at, accountIDs[seq%len(accountIDs)])
		return err
	}
	for i := 0; i < s.Statuses; i++ {
		if err := insertStatus(s.NewestStatus.Add(-time.Duration(s.Statuses-1-i)*53*time.Minute), i); err != nil {
			return err
		}
	}
	if s.Future > 0 {
		if err := insertStatus(s.NewestStatus.Add(s.Future), s.Statuses); err != nil {
			return err
		}
	}
	_, err := conn.Exec(ctx, "ANALYZE")
	return err
}
