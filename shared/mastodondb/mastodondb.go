// Package mastodondb reads a Mastodon PostgreSQL database, read-only, for the restore drill:
// it connects to a Cloud SQL clone through the Cloud SQL Go connector
// (cloud.google.com/go/cloudsqlconn, with IAM database authentication or a password) or, for
// tests and local proxies, straight to a loopback address with pgx, and answers the drill's
// sanity questions (Facts).
//
// The session is read-only twice over: the connection asks for
// default_transaction_read_only=on at startup and then runs SET SESSION CHARACTERISTICS AS
// TRANSACTION READ ONLY, Open checks that transaction_read_only is on before it returns, and
// every query runs in a READ ONLY transaction. The package only ever sends SELECT and SHOW
// statements (and that SET).
package mastodondb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"github.com/jackc/pgx/v5"
)

// IP types of the Cloud SQL connector.
const (
	IPPublic  = "public"
	IPPrivate = "private"
	IPPSC     = "psc"
)

// Config says where and how to connect.
type Config struct {
	// ConnectionName (project:region:instance) is dialled through the Cloud SQL connector.
	ConnectionName string
	// IPType is how the connector reaches the instance: IPPublic (default), IPPrivate or IPPSC.
	IPType string
	// Address (host:port) is dialled directly with pgx instead of the connector: a test server
	// or a local Cloud SQL Auth Proxy. It takes precedence over ConnectionName.
	Address string

	Database string
	User     string
	// Password authenticates with a password; empty means IAM database authentication (the
	// connector's WithIAMAuthN; User is then the service account e-mail without
	// ".gserviceaccount.com").
	Password string

	// ConnectTimeout bounds the connection (default 30s); StatementTimeout each query
	// (default 60s, set as the session's statement_timeout).
	ConnectTimeout   time.Duration
	StatementTimeout time.Duration

	// ConnectorOptions are added to the connector's options (tests, credentials).
	ConnectorOptions []cloudsqlconn.Option
}

// DB is a read-only session on a Mastodon database.
type DB struct {
	conn   *pgx.Conn
	dialer *cloudsqlconn.Dialer
}

// ErrNotReadOnly says that the server did not make the session read-only; Open then closes
// it without running anything else.
var ErrNotReadOnly = errors.New("the database session is not read-only")

// Open connects and makes the session read-only.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = 60 * time.Second
	}
	if cfg.Database == "" || cfg.User == "" {
		return nil, errors.New("mastodondb: database and user are required")
	}
	pc, err := pgx.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("mastodondb: %w", err)
	}
	pc.Database = cfg.Database
	pc.User = cfg.User
	pc.Password = cfg.Password
	pc.ConnectTimeout = cfg.ConnectTimeout
	pc.TLSConfig = nil // the connector encrypts; a direct Address is a loopback test server or proxy
	pc.Fallbacks = nil
	pc.RuntimeParams = map[string]string{
		"application_name":              "fediops-restore-drill",
		"default_transaction_read_only": "on",
		"statement_timeout":             strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10),
	}
	db := &DB{}
	switch {
	case cfg.Address != "":
		host, port, err := net.SplitHostPort(cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("mastodondb: address %q: %w", cfg.Address, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("mastodondb: address %q: bad port", cfg.Address)
		}
		pc.Host, pc.Port = host, uint16(p)
	case cfg.ConnectionName != "":
		opts := []cloudsqlconn.Option{
			cloudsqlconn.WithLazyRefresh(), // Cloud Functions throttle the CPU between requests
			cloudsqlconn.WithBuiltInMetrics(false),
			cloudsqlconn.WithUserAgent("fediops-restore-drill"),
		}
		if cfg.Password == "" {
			opts = append(opts, cloudsqlconn.WithIAMAuthN())
		}
		switch cfg.IPType {
		case IPPrivate:
			opts = append(opts, cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPrivateIP()))
		case IPPSC:
			opts = append(opts, cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPSC()))
		default:
			opts = append(opts, cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPublicIP()))
		}
		d, err := cloudsqlconn.NewDialer(ctx, append(opts, cfg.ConnectorOptions...)...)
		if err != nil {
			return nil, fmt.Errorf("mastodondb: Cloud SQL connector: %w", err)
		}
		db.dialer = d
		name := cfg.ConnectionName
		// pgx neither resolves nor dials this host: LookupFunc and DialFunc replace both, and
		// the connector finds the instance's address through the Cloud SQL Admin API.
		pc.Host, pc.Port = "cloudsql-connector", 5432
		pc.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
		pc.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.Dial(ctx, name)
		}
	default:
		return nil, errors.New("mastodondb: neither a connection name nor an address")
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, pc)
	if err != nil {
		db.closeDialer()
		return nil, fmt.Errorf("mastodondb: connect to database %s as %s: %w", cfg.Database, cfg.User, err)
	}
	db.conn = conn
	if _, err := conn.Exec(ctx, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"); err != nil {
		db.Close(ctx)
		return nil, fmt.Errorf("mastodondb: make the session read-only: %w", err)
	}
	var ro string
	if err := conn.QueryRow(ctx, "SHOW transaction_read_only").Scan(&ro); err != nil {
		db.Close(ctx)
		return nil, fmt.Errorf("mastodondb: check the session is read-only: %w", err)
	}
	if ro != "on" {
		db.Close(ctx)
		return nil, fmt.Errorf("mastodondb: transaction_read_only is %q: %w", ro, ErrNotReadOnly)
	}
	return db, nil
}

// Close ends the session.
func (db *DB) Close(ctx context.Context) {
	if db.conn != nil {
		_ = db.conn.Close(context.WithoutCancel(ctx))
	}
	db.closeDialer()
}

func (db *DB) closeDialer() {
	if db.dialer != nil {
		_ = db.dialer.Close()
		db.dialer = nil
	}
}

// Table is what the drill learns about one table.
type Table struct {
	Name     string
	NonEmpty bool
	// Estimate is the planner's row estimate (pg_class.reltuples), -1 when unknown (a clone
	// whose tables were never analysed).
	Estimate int64
	// Newest is the created_at of the newest row created at or before the point in time
	// (statuses and accounts only; zero when there is none).
	Newest time.Time
	// After counts rows dated after the point in time (at most 1000): rows a remote server
	// stamped with a clock ahead of ours, or rows the clone should not hold.
	After int64
}

// Facts are the answers to the drill's sanity questions.
type Facts struct {
	// SchemaVersion is the newest schema_migrations.version (e.g. "20240522041528").
	SchemaVersion string
	Accounts      Table
	Users         Table
	Statuses      Table
	// ServerVersion is the server's server_version.
	ServerVersion string
}

// afterCap bounds the count of rows dated after the point in time.
const afterCap = 1000

// Facts answers the sanity questions about the database as of pointInTime, in one read-only
// transaction. Mastodon's accounts and statuses ids are Snowflake-like: the high 48 bits are
// milliseconds since the Unix epoch (lib/mastodon/snowflake.rb), and Mastodon's own SQL finds
// newer rows with id >= (epoch_ms << 16). The newest row at or before pointInTime is found
// through the primary key index that way, not by scanning created_at.
func (db *DB) Facts(ctx context.Context, pointInTime time.Time) (Facts, error) {
	var f Facts
	tx, err := db.conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return f, fmt.Errorf("mastodondb: begin a read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if err := tx.QueryRow(ctx, "SHOW server_version").Scan(&f.ServerVersion); err != nil {
		return f, fmt.Errorf("mastodondb: server_version: %w", err)
	}
	var version *string
	if err := tx.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&version); err != nil {
		return f, fmt.Errorf("mastodondb: schema_migrations: %w", err)
	}
	if version != nil {
		f.SchemaVersion = *version
	}
	bound := (pointInTime.UnixMilli() + 1) << 16
	for _, t := range []struct {
		table  *Table
		name   string
		newest bool
	}{{&f.Accounts, "accounts", true}, {&f.Users, "users", false}, {&f.Statuses, "statuses", true}} {
		t.table.Name = t.name
		// The table names are constants of this function, never input.
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+t.name+")").Scan(&t.table.NonEmpty); err != nil {
			return f, fmt.Errorf("mastodondb: %s: %w", t.name, err)
		}
		var est *float64
		if err := tx.QueryRow(ctx, "SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass($1)", t.name).Scan(&est); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return f, fmt.Errorf("mastodondb: %s estimate: %w", t.name, err)
		}
		t.table.Estimate = -1
		if est != nil && *est >= 0 {
			t.table.Estimate = int64(*est)
		}
		if !t.newest {
			continue
		}
		var newest *time.Time
		err := tx.QueryRow(ctx, "SELECT created_at FROM "+t.name+" WHERE id < $1 ORDER BY id DESC LIMIT 1", bound).Scan(&newest)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return f, fmt.Errorf("mastodondb: newest %s: %w", t.name, err)
		}
		if newest != nil {
			t.table.Newest = newest.UTC()
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+t.name+" WHERE id >= $1 LIMIT $2) AS later", bound, afterCap).Scan(&t.table.After); err != nil {
			return f, fmt.Errorf("mastodondb: %s after the point in time: %w", t.name, err)
		}
	}
	return f, nil
}
