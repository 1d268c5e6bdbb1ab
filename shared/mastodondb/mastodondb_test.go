package mastodondb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/oauth2"

	"github.com/fediops/fediops/shared/testsupport/backupfake"
	"github.com/fediops/fediops/shared/testsupport/pgserver"
)

// TestFactsOnARealServer seeds a real PostgreSQL with the Mastodon schema subset and reads it
// back through the read-only session, as the drill does with a clone.
func TestFactsOnARealServer(t *testing.T) {
	srv := pgserver.StartT(t)
	ctx := context.Background()
	if err := srv.CreateDatabase(ctx, "mastodon_production"); err != nil {
		t.Fatal(err)
	}
	newest := time.Date(2026, 5, 4, 2, 58, 12, 0, time.UTC)
	sample := pgserver.DefaultSample(newest)
	sample.Future = 3 * time.Hour // a remote server's clock ahead of ours
	if err := srv.SeedMastodon(ctx, "mastodon_production", sample); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateReader(ctx, "fediops_drill", "drill-pass"); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, Config{Address: srv.Addr, Database: "mastodon_production", User: "fediops_drill", Password: "drill-pass"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	pit := newest.Add(10 * time.Minute)
	f, err := db.Facts(ctx, pit)
	if err != nil {
		t.Fatal(err)
	}
	if f.SchemaVersion != "20251217091936" {
		t.Errorf("schema version %q", f.SchemaVersion)
	}
	if !f.Accounts.NonEmpty || !f.Users.NonEmpty || !f.Statuses.NonEmpty {
		t.Errorf("tables empty: %+v", f)
	}
	if !f.Statuses.Newest.Equal(newest) {
		t.Errorf("newest status %s, want %s", f.Statuses.Newest, newest)
	}
	if !f.Accounts.Newest.Equal(sample.NewestAccount) {
		t.Errorf("newest account %s, want %s", f.Accounts.Newest, sample.NewestAccount)
	}
	if f.Statuses.After != 1 || f.Accounts.After != 0 {
		t.Errorf("rows after the point in time: statuses %d, accounts %d", f.Statuses.After, f.Accounts.After)
	}
	if f.Statuses.Estimate != 41 {
		t.Errorf("statuses estimate %d, want 41 (analysed)", f.Statuses.Estimate)
	}
	// A point in time before the newest status finds an older one.
	f, err = db.Facts(ctx, newest.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Statuses.Newest.Before(newest) || f.Statuses.After != 2 {
		t.Errorf("earlier point in time: newest %s, after %d", f.Statuses.Newest, f.Statuses.After)
	}
}

// TestSessionIsReadOnly proves the session refuses writes even for a role that may write
// (the superuser): the guarantee comes from the session, not from grants.
func TestSessionIsReadOnly(t *testing.T) {
	srv := pgserver.StartT(t)
	ctx := context.Background()
	if err := srv.CreateDatabase(ctx, "mastodon_production"); err != nil {
		t.Fatal(err)
	}
	if err := srv.SeedMastodon(ctx, "mastodon_production", pgserver.DefaultSample(time.Now())); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, Config{Address: srv.Addr, Database: "mastodon_production", User: pgserver.AdminUser, Password: srv.AdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	for _, stmt := range []string{
		"INSERT INTO schema_migrations (version) VALUES ('29990101000000')",
		"DELETE FROM statuses",
		"CREATE TABLE x (id int)",
		"UPDATE accounts SET suspended_at = now()",
	} {
		_, err := db.conn.Exec(ctx, stmt)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "25006" { // read_only_sql_transaction
			t.Errorf("%s: err = %v, want SQLSTATE 25006", stmt, err)
		}
		_, _ = db.conn.Exec(ctx, "ROLLBACK")
	}
	admin, err := srv.Admin(ctx, "mastodon_production")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM statuses").Scan(&n); err != nil || n != 40 {
		t.Errorf("statuses after the attempts: %d (%v), want 40", n, err)
	}
}

func TestOpenFailures(t *testing.T) {
	srv := pgserver.StartT(t)
	ctx := context.Background()
	if _, err := Open(ctx, Config{Address: srv.Addr, Database: "postgres", User: pgserver.AdminUser, Password: "wrong"}); err == nil {
		t.Error("a wrong password connected")
	}
	if _, err := Open(ctx, Config{Address: srv.Addr, Database: "nope", User: pgserver.AdminUser, Password: srv.AdminPassword}); err == nil {
		t.Error("a missing database connected")
	}
	if _, err := Open(ctx, Config{Database: "x", User: "y"}); err == nil {
		t.Error("no address and no connection name accepted")
	}
	// A database without Mastodon's tables: Facts fails, naming the table.
	db, err := Open(ctx, Config{Address: srv.Addr, Database: "postgres", User: pgserver.AdminUser, Password: srv.AdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Facts(ctx, time.Now()); err == nil {
		t.Error("facts of an empty database")
	}
}

// TestThroughTheCloudSQLConnector connects the way the deployed drill does, through the
// Cloud SQL Go connector (connectSettings, an ephemeral client certificate, TLS 1.3 to the
// instance's server-side proxy), here the fake's, in front of a real PostgreSQL.
func TestThroughTheCloudSQLConnector(t *testing.T) {
	srv := pgserver.StartT(t)
	ctx := context.Background()
	if err := srv.CreateDatabase(ctx, "mastodon_production"); err != nil {
		t.Fatal(err)
	}
	newest := time.Now().UTC().Truncate(time.Second).Add(-20 * time.Minute)
	if err := srv.SeedMastodon(ctx, "mastodon_production", pgserver.DefaultSample(newest)); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateReader(ctx, "fediops_drill", "via-connector"); err != nil {
		t.Fatal(err)
	}
	fake := backupfake.Start(backupfake.Healthy(time.Now()))
	defer fake.Close()
	fake.ServeDatabase(backupfake.HealthyProject, backupfake.SampleInstance, srv.Addr)
	db, err := Open(ctx, Config{
		ConnectionName: backupfake.HealthyProject + ":" + backupfake.SampleLocation + ":" + backupfake.SampleInstance,
		Database:       "mastodon_production", User: "fediops_drill", Password: "via-connector",
		ConnectorOptions: []cloudsqlconn.Option{
			cloudsqlconn.WithAdminAPIEndpoint(fake.SQLAdmin.URL + "/"),
			cloudsqlconn.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ya29.connector-test", Expiry: time.Now().Add(time.Hour)})),
			cloudsqlconn.WithDialFunc(fake.DialConnector),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	f, err := db.Facts(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !f.Statuses.Newest.Equal(newest) || !f.Users.NonEmpty {
		t.Errorf("facts through the connector: %+v", f)
	}
	var sawCert, sawSettings bool
	for _, r := range fake.Requests() {
		sawCert = sawCert || strings.HasSuffix(r.Path, ":generateEphemeralCert")
		sawSettings = sawSettings || strings.HasSuffix(r.Path, "/connectSettings")
	}
	if !sawCert || !sawSettings {
		t.Errorf("the connector did not use the Admin API: %+v", fake.Requests())
	}
}
