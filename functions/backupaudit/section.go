package backupaudit

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/config"
)

// Section is the [backup] table: what the backup audit looks at, where the Google APIs live
// and the thresholds it applies. Every threshold left out (or 0) keeps its default.
//
//	[backup]
//	sqladmin_endpoint = ""          # default https://sqladmin.googleapis.com/
//	storage_endpoint = ""           # default https://storage.googleapis.com/storage/v1/
//	gkebackup_endpoint = ""         # default https://gkebackup.googleapis.com
//	request_timeout = "30s"
//	min_retained_backups = 7
//	min_log_retention_days = 7
//	max_backup_age = "26h"
//	max_recovery_point_age = "15m"
//	failed_window = "168h"
//	min_soft_delete_days = 7
//	min_gke_retention_days = 7
//	max_growth_pct = 50
//	growth_window = 7
//
//	leftover_pods_min_age = "0s"
//
//	[[backup.cloudsql]]
//	project = "my-project"
//	instance = "mastodon-db"
//	drill = true                    # monthly restore drill (drill.go)
//	drill_user = "fediops-backupaudit@my-project.iam"
//
//	[[backup.bucket]]
//	name = "mastodon-media"
//
//	[[backup.gke]]
//	project = "my-project"
//	location = "europe-west1"
//	plan = "mastodon-nightly"
//	delete_leftover_pods_older_than = "72h"   # optional cleanup, off by default
type Section struct {
	// SQLAdminEndpoint, StorageEndpoint and GKEBackupEndpoint are HTTP/JSON base URLs that
	// replace the public Google endpoints (tests, private endpoints). An http:// URL is only
	// accepted on a loopback host, and is then used without authentication.
	SQLAdminEndpoint  string `toml:"sqladmin_endpoint"`
	StorageEndpoint   string `toml:"storage_endpoint"`
	GKEBackupEndpoint string `toml:"gkebackup_endpoint"`
	// ContainerEndpoint replaces the GKE API (clusters.get); on an http:// loopback URL the
	// clusters it names are reached without credentials too (tests).
	ContainerEndpoint string `toml:"container_endpoint"`
	// RequestTimeout bounds every single API request (default 30s).
	RequestTimeout config.Duration `toml:"request_timeout"`

	CloudSQL []CloudSQLEntry `toml:"cloudsql"`
	Buckets  []BucketEntry   `toml:"bucket"`
	GKE      []GKEEntry      `toml:"gke"`

	// Threshold overrides; 0 means "use the default".
	MinRetainedBackups  int             `toml:"min_retained_backups"`   // default 7
	MinLogRetentionDays int             `toml:"min_log_retention_days"` // default 7
	MaxBackupAge        config.Duration `toml:"max_backup_age"`         // default 26h
	MaxRecoveryPointAge config.Duration `toml:"max_recovery_point_age"` // default 15m
	FailedWindow        config.Duration `toml:"failed_window"`          // default 168h
	MinSoftDeleteDays   int             `toml:"min_soft_delete_days"`   // default 7
	MinGKERetentionDays int             `toml:"min_gke_retention_days"` // default 7
	MaxGrowthPct        float64         `toml:"max_growth_pct"`         // default 50
	GrowthWindow        int             `toml:"growth_window"`          // default 7 (backups)
	LeftoverPodsMinAge  config.Duration `toml:"leftover_pods_min_age"`  // default 0 (every finished pod)
}

// CloudSQLEntry is one [[backup.cloudsql]] entry: a Cloud SQL instance to audit and,
// optionally, to restore in a drill.
type CloudSQLEntry struct {
	Project  string `toml:"project"`
	Instance string `toml:"instance"`

	// Drill enables the restore drill of this instance (off by default).
	Drill bool `toml:"drill"`
	// DrillTier is the clone's machine type (default: the source's tier).
	DrillTier string `toml:"drill_tier"`
	// DrillMaxHours is how long a drill may take before its clone is deleted whatever state
	// it is in, and the age past which the sweeper deletes any fediops-drill-* instance
	// (default 3).
	DrillMaxHours int `toml:"drill_max_hours"`
	// DrillDatabase is the database the sanity queries read (default mastodon_production).
	DrillDatabase string `toml:"drill_database"`
	// DrillUser is the database user: with IAM database authentication (the default), the
	// service account's e-mail without ".gserviceaccount.com".
	DrillUser string `toml:"drill_user"`
	// DrillPassword is a secret reference to DrillUser's password; empty means IAM database
	// authentication through the Cloud SQL connector.
	DrillPassword string `toml:"drill_password"`
	// DrillIPType is how the connector reaches the clone: public (default), private or psc.
	DrillIPType string `toml:"drill_ip_type"`
	// DrillSchemaVersion, when set, is the newest schema_migrations.version the clone must
	// hold (e.g. "20251217091936").
	DrillSchemaVersion string `toml:"drill_schema_version"`
	// DrillMaxDataAge bounds the RPO check: the newest statuses and accounts rows must be at
	// most this much older than the point in time (default 24h).
	DrillMaxDataAge config.Duration `toml:"drill_max_data_age"`
	// DrillAddress (host:port, loopback only) makes the drill connect there with pgx instead
	// of through the Cloud SQL connector: tests, a local Cloud SQL Auth Proxy.
	DrillAddress string `toml:"drill_address"`
}

// Drill defaults.
const (
	DefaultDrillMaxHours   = 3
	DefaultDrillDatabase   = "mastodon_production"
	DefaultDrillMaxDataAge = 24 * time.Hour
	// MaxDrillHours caps drill_max_hours: a clone is a full, billed instance.
	MaxDrillHours = 24
)

// BucketEntry is one [[backup.bucket]] entry: a Cloud Storage bucket to audit.
type BucketEntry struct {
	Name string `toml:"name"`
}

// GKEEntry is one [[backup.gke]] entry: a Backup for GKE backup plan to audit.
type GKEEntry struct {
	Project  string `toml:"project"`
	Location string `toml:"location"`
	Plan     string `toml:"plan"`
	// DeleteLeftoverPodsOlderThan, when set, makes the audit delete Failed pods (and, with
	// IncludeSucceeded, Succeeded ones) in the plan's namespaces that finished longer ago
	// than this. Off by default; needs the separate cleanup grant.
	DeleteLeftoverPodsOlderThan config.Duration `toml:"delete_leftover_pods_older_than"`
	IncludeSucceeded            bool            `toml:"include_succeeded"`
}

// MinLeftoverPodAge is the smallest delete_leftover_pods_older_than: people look at a failed
// pod's logs in the first hours.
const MinLeftoverPodAge = time.Hour

var (
	// Project IDs: 6–30 characters; older domain-scoped projects look like "example.com:proj".
	backupProjectRe = regexp.MustCompile(`^([a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	// Cloud SQL instance IDs: lowercase letters, digits and hyphens, starting with a letter.
	backupInstanceRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,97}$`)
	// Bucket names: 3–222 characters of lowercase letters, digits, '-', '_' and '.',
	// starting and ending with a letter or digit.
	backupBucketRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$`)
	// Locations such as europe-west1 or us-central1-a; backup plan IDs.
	backupLocationRe = regexp.MustCompile(`^[a-z][a-z0-9-]*[a-z0-9]$`)
	backupPlanRe     = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// check validates the [backup] table.
func (b *Section) check(r config.Report) {
	checkBackupEndpoint(r, "sqladmin_endpoint", b.SQLAdminEndpoint)
	checkBackupEndpoint(r, "storage_endpoint", b.StorageEndpoint)
	checkBackupEndpoint(r, "gkebackup_endpoint", b.GKEBackupEndpoint)
	checkBackupEndpoint(r, "container_endpoint", b.ContainerEndpoint)

	seen := map[string]string{}
	dup := func(r config.Report, key, id string) {
		if prev, ok := seen[id]; ok {
			r.Add("", "duplicates %s", prev)
			return
		}
		seen[id] = key
	}

	for i, c := range b.CloudSQL {
		key := fmt.Sprintf("cloudsql[%d]", i)
		s := r.Sub(key)
		ok := checkBackupProject(s, c.Project)
		switch {
		case c.Instance == "":
			s.Add("instance", "is required")
			ok = false
		case strings.Contains(c.Instance, ":"):
			s.Add("instance", "%q looks like a connection name: give the instance ID only (e.g. \"mastodon-db\")", c.Instance)
			ok = false
		case !backupInstanceRe.MatchString(c.Instance):
			s.Add("instance", "%q is not a Cloud SQL instance ID (lowercase letters, digits and hyphens, starting with a letter)", c.Instance)
			ok = false
		}
		if ok {
			dup(s, key, "cloudsql "+c.Project+"/"+c.Instance)
		}
		checkDrill(s, c, ok)
	}

	for i, bk := range b.Buckets {
		key := fmt.Sprintf("bucket[%d]", i)
		s := r.Sub(key)
		name := bk.Name
		switch {
		case name == "":
			s.Add("name", "is required")
		case strings.HasPrefix(name, "gs://"):
			s.Add("name", "give the bucket name without gs:// (%q)", strings.TrimPrefix(name, "gs://"))
		case !backupBucketRe.MatchString(name) || strings.Contains(name, ".."):
			s.Add("name", "%q is not a Cloud Storage bucket name (lowercase letters, digits, '-', '_' and '.')", name)
		default:
			dup(s, key, "bucket "+name)
		}
	}

	for i, g := range b.GKE {
		key := fmt.Sprintf("gke[%d]", i)
		s := r.Sub(key)
		ok := checkBackupProject(s, g.Project)
		switch {
		case g.Location == "":
			s.Add("location", "is required")
			ok = false
		case !backupLocationRe.MatchString(g.Location):
			s.Add("location", "%q is not a Google Cloud location (e.g. \"europe-west1\")", g.Location)
			ok = false
		}
		switch {
		case g.Plan == "":
			s.Add("plan", "is required")
			ok = false
		case strings.Contains(g.Plan, "/"):
			s.Add("plan", "give the backup plan ID only (e.g. \"mastodon-nightly\"), not %q; project and location are separate keys", g.Plan)
			ok = false
		case !backupPlanRe.MatchString(g.Plan):
			s.Add("plan", "%q is not a backup plan ID (lowercase letters, digits and hyphens, starting with a letter, at most 63)", g.Plan)
			ok = false
		}
		if ok {
			dup(s, key, "gke "+g.Project+"/"+g.Location+"/"+g.Plan)
		}
		switch d := g.DeleteLeftoverPodsOlderThan.Duration; {
		case d < 0:
			s.Add("delete_leftover_pods_older_than", "must not be negative (leave it out to delete nothing)")
		case d > 0 && d < MinLeftoverPodAge:
			s.Add("delete_leftover_pods_older_than", "is %s: use at least %s (people read a failed pod's logs in the first hours; \"72h\" is a good choice)", d, MinLeftoverPodAge)
		}
		if g.IncludeSucceeded && g.DeleteLeftoverPodsOlderThan.Duration == 0 {
			s.Add("include_succeeded", "has no effect without delete_leftover_pods_older_than")
		}
	}

	nonNegInt := func(key string, v int) {
		if v < 0 {
			r.Add(key, "must not be negative (0 keeps the default)")
		}
	}
	nonNegInt("min_retained_backups", b.MinRetainedBackups)
	nonNegInt("min_log_retention_days", b.MinLogRetentionDays)
	nonNegInt("min_soft_delete_days", b.MinSoftDeleteDays)
	nonNegInt("min_gke_retention_days", b.MinGKERetentionDays)
	nonNegInt("growth_window", b.GrowthWindow)
	if b.MinLogRetentionDays > 35 {
		r.Add("min_log_retention_days", "is %d, but Cloud SQL keeps transaction logs for at most 35 days", b.MinLogRetentionDays)
	}
	if b.MinGKERetentionDays > 365 {
		r.Add("min_gke_retention_days", "is %d, but Backup for GKE keeps backups for at most 365 days", b.MinGKERetentionDays)
	}
	if b.MaxGrowthPct < 0 {
		r.Add("max_growth_pct", "must not be negative (0 keeps the default)")
	}

	nonNegDur := func(key string, d config.Duration) {
		if d.Duration < 0 {
			r.Add(key, "must not be negative (0 keeps the default)")
		}
	}
	nonNegDur("request_timeout", b.RequestTimeout)
	nonNegDur("max_backup_age", b.MaxBackupAge)
	nonNegDur("max_recovery_point_age", b.MaxRecoveryPointAge)
	nonNegDur("failed_window", b.FailedWindow)
	nonNegDur("leftover_pods_min_age", b.LeftoverPodsMinAge)
	if b.RequestTimeout.Duration > 10*time.Minute {
		r.Add("request_timeout", "is %s, longer than a Cloud Function may run; use at most 10m", b.RequestTimeout.Duration)
	}
}

var (
	drillTierRe    = regexp.MustCompile(`^db-[a-z0-9-]+$`)
	drillVersionRe = regexp.MustCompile(`^[0-9]{14}$`)
	drillDBRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$-]{0,62}$`)
)

// checkDrill validates the drill keys of one [[backup.cloudsql]] entry.
func checkDrill(s config.Report, c CloudSQLEntry, named bool) {
	set := []string{}
	for key, v := range map[string]bool{
		"drill_tier": c.DrillTier != "", "drill_max_hours": c.DrillMaxHours != 0, "drill_database": c.DrillDatabase != "",
		"drill_user": c.DrillUser != "", "drill_password": c.DrillPassword != "", "drill_ip_type": c.DrillIPType != "",
		"drill_schema_version": c.DrillSchemaVersion != "", "drill_max_data_age": c.DrillMaxDataAge.Duration != 0,
		"drill_address": c.DrillAddress != "",
	} {
		if v {
			set = append(set, key)
		}
	}
	if !c.Drill {
		sort.Strings(set)
		for _, key := range set {
			s.Add(key, "is set but drill is not true: add drill = true to run restore drills, or remove it")
		}
		return
	}
	if named {
		if n := len(c.Project) + 1 + len(DrillName(c.Instance, time.Time{})); n > 98 {
			s.Add("instance", "is too long for a drill: the clone's connection name %s:%s would be %d characters, Cloud SQL allows 98", c.Project, DrillName(c.Instance, time.Time{}), n)
		}
	}
	if c.DrillTier != "" && !drillTierRe.MatchString(c.DrillTier) {
		s.Add("drill_tier", "%q is not a Cloud SQL machine type (e.g. \"db-custom-1-3840\" or \"db-g1-small\")", c.DrillTier)
	}
	switch {
	case c.DrillMaxHours < 0:
		s.Add("drill_max_hours", "must not be negative (0 keeps the default of %d)", DefaultDrillMaxHours)
	case c.DrillMaxHours > MaxDrillHours:
		s.Add("drill_max_hours", "is %d: a clone is a full, billed instance; use at most %d", c.DrillMaxHours, MaxDrillHours)
	}
	if c.DrillDatabase != "" && !drillDBRe.MatchString(c.DrillDatabase) {
		s.Add("drill_database", "%q is not a PostgreSQL database name", c.DrillDatabase)
	}
	if c.DrillUser == "" {
		s.Add("drill_user", "is required with drill = true: the database user the drill connects as (for IAM database authentication, the service account e-mail without \".gserviceaccount.com\", e.g. \"fediops-backupaudit@%s.iam\")", orDefault(c.Project, "my-project"))
	} else if strings.HasSuffix(c.DrillUser, ".gserviceaccount.com") && c.DrillPassword == "" {
		s.Add("drill_user", "for IAM database authentication PostgreSQL names the service account without \".gserviceaccount.com\": use %q", strings.TrimSuffix(c.DrillUser, ".gserviceaccount.com"))
	}
	config.CheckSecretRef(s, "drill_password", c.DrillPassword, false)
	switch c.DrillIPType {
	case "", "public", "private", "psc":
	default:
		s.Add("drill_ip_type", "%q: use public, private or psc", c.DrillIPType)
	}
	if c.DrillSchemaVersion != "" && !drillVersionRe.MatchString(c.DrillSchemaVersion) {
		s.Add("drill_schema_version", "%q is not a Rails migration version (14 digits, e.g. \"20251217091936\")", c.DrillSchemaVersion)
	}
	if c.DrillMaxDataAge.Duration < 0 {
		s.Add("drill_max_data_age", "must not be negative (0 keeps the default of %s)", DefaultDrillMaxDataAge)
	}
	if c.DrillAddress != "" {
		host, port, err := net.SplitHostPort(c.DrillAddress)
		switch {
		case err != nil || port == "":
			s.Add("drill_address", "%q must be host:port", c.DrillAddress)
		case !config.LoopbackHost(host):
			s.Add("drill_address", "%q: only a loopback address (a test server or a local Cloud SQL Auth Proxy); leave it out to connect through the Cloud SQL connector", c.DrillAddress)
		}
	}
}

// checkBackupEndpoint accepts an empty value (the public Google endpoint), an https:// URL,
// or an http:// URL on a loopback host (tests, local emulators).
// checkBackupProject validates a project key and reports whether it is usable.
func checkBackupProject(s config.Report, project string) bool {
	switch {
	case project == "":
		s.Add("project", "is required")
		return false
	case !backupProjectRe.MatchString(project):
		s.Add("project", "%q is not a Google Cloud project ID (6–30 lowercase letters, digits and hyphens)", project)
		return false
	}
	return true
}

func checkBackupEndpoint(r config.Report, key, v string) {
	if v == "" {
		return
	}
	u, err := url.Parse(v)
	if err != nil {
		r.Add(key, "is not a URL: %v", err)
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !config.LoopbackHost(u.Hostname()) {
			r.Add(key, "%q: http:// is only allowed on a loopback host (127.0.0.1, [::1], localhost); use https://", v)
			return
		}
	default:
		r.Add(key, "%q must start with https:// (or http:// on a loopback host)", v)
		return
	}
	if u.Host == "" {
		r.Add(key, "%q has no host", v)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		r.Add(key, "%q must be a plain base URL (no user, query or fragment)", v)
	}
}

// LoadSection decodes and validates the [backup] table of c.
func LoadSection(c *config.Config) (*Section, error) {
	var s Section
	if err := c.Section("backup", &s); err != nil {
		return nil, err
	}
	r := c.Report()
	s.check(r.Sub("backup"))
	if err := r.Err(); err != nil {
		return nil, err
	}
	return &s, nil
}

// CheckConfig validates the [backup] table of c (for the other functions' warnings and the
// CLI's list of problems).
func CheckConfig(c *config.Config) error {
	_, err := LoadSection(c)
	return err
}
