// Package backupfake serves fake Cloud SQL Admin, Cloud Storage and Backup for GKE REST APIs
// on local HTTP servers, so that the real Google client libraries can be tested against
// realistic answers without a network or credentials.
//
// Answers are built from the client libraries' own generated types (sqladmin.DatabaseInstance,
// storage/v1 Bucket, gkebackuppb.BackupPlan...) and encoded the way Google encodes them:
// encoding/json with omitempty for the discovery-based APIs (so a false boolean is absent),
// protojson for Backup for GKE (enums as numbers when the client asks for
// "$alt=json;enum-encoding=int", as the Go REST client does). Each resource can instead fail
// in a chosen way (Fault) or answer a verbatim JSON body.
//
// Routes:
//
//	sqladmin:  GET /v1/projects/{p}/instances/{i}
//	           GET /v1/projects/{p}/instances/{i}/backupRuns           (maxResults, pageToken)
//	           GET /v1/projects/{p}/instances/{i}/getLatestRecoveryTime
//	           GET /v1/projects/{p}/instances                           (instances.list)
//	           POST /v1/projects/{p}/instances/{i}/clone                (clones appear, become
//	           RUNNABLE and disappear on the fake's clock: see Drill, SetClock)
//	           PATCH, DELETE /v1/projects/{p}/instances/{i}
//	           GET /v1/projects/{p}/operations/{op}
//	           GET …/instances/{i}/connectSettings, POST …/instances/{i}:generateEphemeralCert
//	           (also under /sql/v1beta4, which the connector uses)
//	           and each instance's server-side proxy (connector.go), for the Cloud SQL connector
//	container: GET /v1/projects/{p}/locations/{l}/clusters/{c}         (clusters.get)
//	kubernetes (one TLS server per cluster, its CA in clusters.get):
//	           GET /api/v1/pods, GET /api/v1/namespaces/{ns}/pods      (fieldSelector, limit, continue)
//	           DELETE /api/v1/namespaces/{ns}/pods/{name}              (preconditions)
//	storage:   GET /storage/v1/b/{bucket}
//	gkebackup: GET /v1/projects/{p}/locations/{l}/backupPlans/{plan}
//	           GET /v1/projects/{p}/locations/{l}/backupPlans/{plan}/backups (pageSize, pageToken)
package backupfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/gkebackup/apiv1/gkebackuppb"
	sqladmin "google.golang.org/api/sqladmin/v1"
	rawstorage "google.golang.org/api/storage/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Fault makes one API call fail in a chosen way.
type Fault int

// Faults.
const (
	// OK answers normally.
	OK Fault = iota
	// Forbidden answers 403 with the API's permission-denied error.
	Forbidden
	// NotFound answers 404 with the API's not-found error.
	NotFound
	// Internal answers 500.
	Internal
	// Unavailable answers 503.
	Unavailable
	// Malformed answers 200 with a truncated JSON body.
	Malformed
	// Hang never answers: the handler waits until the client gives up or the server closes.
	Hang
)

func (f Fault) String() string {
	switch f {
	case OK:
		return "ok"
	case Forbidden:
		return "403"
	case NotFound:
		return "404"
	case Internal:
		return "500"
	case Unavailable:
		return "503"
	case Malformed:
		return "malformed"
	case Hang:
		return "hang"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// Faults lists every failing Fault, for table tests.
func Faults() []Fault { return []Fault{Forbidden, NotFound, Internal, Unavailable, Malformed, Hang} }

// SQLInstance is a Cloud SQL instance and its backup history.
type SQLInstance struct {
	Project, Instance string

	Resource *sqladmin.DatabaseInstance // instances.get
	Runs     []*sqladmin.BackupRun      // backupRuns.list; served newest enqueued first
	// Recovery is served by getLatestRecoveryTime; nil serves an answer without times.
	Recovery *sqladmin.SqlInstancesGetLatestRecoveryTimeResponse

	InstanceFault, RunsFault, RecoveryFault Fault
	// InstanceJSON, RunsJSON and RecoveryJSON, when set, are served verbatim (200).
	InstanceJSON, RunsJSON, RecoveryJSON string
	// PageSize caps backup runs per page (0: as many as the client asks for).
	PageSize int
	// Drill is how clones of this instance behave.
	Drill Drill
}

// Bucket is a Cloud Storage bucket.
type Bucket struct {
	Name     string
	Resource *rawstorage.Bucket // buckets.get
	Fault    Fault
	JSON     string // served verbatim when set
}

// GKEPlan is a Backup for GKE backup plan and its backups.
type GKEPlan struct {
	Project, Location, Plan string

	Resource *gkebackuppb.BackupPlan // backupPlans.get
	Backups  []*gkebackuppb.Backup   // backups.list

	PlanFault, BackupsFault Fault
	// PlanJSON and BackupsJSON, when set, are served verbatim (200).
	PlanJSON, BackupsJSON string
	// PageSize caps backups per page (0: as many as the client asks for).
	PageSize int
}

// Name is the plan's resource name.
func (p GKEPlan) Name() string {
	return PlanName(p.Project, p.Location, p.Plan)
}

// PlanName returns projects/P/locations/L/backupPlans/X.
func PlanName(project, location, plan string) string {
	return "projects/" + project + "/locations/" + location + "/backupPlans/" + plan
}

// Env is everything the fake servers know.
type Env struct {
	SQL      []SQLInstance
	Buckets  []Bucket
	GKE      []GKEPlan
	Clusters []Cluster
}

// Merge returns an Env holding the resources of all envs.
func Merge(envs ...Env) Env {
	var out Env
	for _, e := range envs {
		out.SQL = append(out.SQL, e.SQL...)
		out.Buckets = append(out.Buckets, e.Buckets...)
		out.GKE = append(out.GKE, e.GKE...)
		out.Clusters = append(out.Clusters, e.Clusters...)
	}
	return out
}

// Request is one request a fake server received.
type Request struct {
	API    string // "sqladmin", "storage", "gkebackup"
	Method string
	Path   string
	Query  string
	Auth   bool // an Authorization header was sent
}

// Server runs the three fake APIs, each on its own loopback HTTP server.
type Server struct {
	SQLAdmin  *httptest.Server
	Storage   *httptest.Server
	GKEBackup *httptest.Server
	Container *httptest.Server

	mu       sync.Mutex
	env      Env
	requests []Request

	now     func() time.Time
	dyn     map[string]*instance  // clones, and deletions of listed instances
	ops     map[string]*operation // "project/name"
	opSeq   int
	clones  []Clone
	deletes []string
	kube    map[string]*kubeServer // cluster resource name → its API server

	connCA    connectorCA
	dbTargets map[string]string    // "project/instance" → database address (ServeDatabase)
	proxies   map[string]*sqlProxy // the instances' server-side proxies

	closing   chan struct{}
	closeOnce sync.Once
}

// Start serves env until Close.
func Start(env Env) *Server {
	env.Clusters = append([]Cluster(nil), env.Clusters...) // deletions must not change the caller's Env
	s := &Server{env: env, closing: make(chan struct{})}

	sql := http.NewServeMux()
	sql.HandleFunc("GET /v1/projects/{project}/instances/{instance}", s.sqlInstance)
	sql.HandleFunc("GET /v1/projects/{project}/instances/{instance}/backupRuns", s.sqlRuns)
	sql.HandleFunc("GET /v1/projects/{project}/instances/{instance}/getLatestRecoveryTime", s.sqlRecovery)
	sql.HandleFunc("GET /v1/projects/{project}/instances", s.sqlList)
	sql.HandleFunc("POST /v1/projects/{project}/instances/{instance}/clone", s.sqlClone)
	sql.HandleFunc("DELETE /v1/projects/{project}/instances/{instance}", s.sqlDelete)
	sql.HandleFunc("PATCH /v1/projects/{project}/instances/{instance}", s.sqlPatch)
	sql.HandleFunc("GET /v1/projects/{project}/operations/{operation}", s.sqlOperation)
	// The Cloud SQL Go connector speaks the v1beta4 surface (sql/v1beta4/...).
	for _, prefix := range []string{"/v1", "/sql/v1beta4"} {
		sql.HandleFunc("GET "+prefix+"/projects/{project}/instances/{instance}/connectSettings", s.sqlConnectSettings)
		sql.HandleFunc("POST "+prefix+"/projects/{project}/instances/{instance}", s.sqlInstancePost)
	}
	sql.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "notFound", "The requested URL "+r.URL.Path+" was not found on this server.")
	})

	gcs := http.NewServeMux()
	gcs.HandleFunc("GET /storage/v1/b/{bucket}", s.bucket)
	gcs.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "notFound", "Not Found")
	})

	gke := http.NewServeMux()
	gke.HandleFunc("GET /v1/projects/{project}/locations/{location}/backupPlans/{plan}", s.gkePlan)
	gke.HandleFunc("GET /v1/projects/{project}/locations/{location}/backupPlans/{plan}/backups", s.gkeBackups)
	gke.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "", "The requested URL "+r.URL.Path+" was not found on this server.")
	})

	ctr := http.NewServeMux()
	ctr.HandleFunc("GET /v1/projects/{project}/locations/{location}/clusters/{cluster}", s.cluster)
	ctr.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeGRPCError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL "+r.URL.Path+" was not found on this server.", "", nil)
	})

	s.SQLAdmin = httptest.NewServer(s.record("sqladmin", sql))
	s.Storage = httptest.NewServer(s.record("storage", gcs))
	s.GKEBackup = httptest.NewServer(s.record("gkebackup", gke))
	s.Container = httptest.NewServer(s.record("container", ctr))
	s.startClusters(env.Clusters)
	return s
}

// Close stops the servers, releasing hanging requests first.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.SQLAdmin.Close()
		s.Storage.Close()
		s.GKEBackup.Close()
		s.Container.Close()
		s.mu.Lock()
		for _, k := range s.kube {
			k.srv.Close()
		}
		s.mu.Unlock()
	})
}

// SetEnv replaces what the servers serve.
func (s *Server) SetEnv(env Env) {
	env.Clusters = append([]Cluster(nil), env.Clusters...)
	s.mu.Lock()
	s.env = env
	s.mu.Unlock()
	s.startClusters(env.Clusters)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Config returns a [backup] table (for a TOML encoder) pointing at the fake servers and
// listing every resource of the Env as a target. Thresholds are left at their defaults.
func (s *Server) Config() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := map[string]any{
		"sqladmin_endpoint":  s.SQLAdmin.URL,
		"storage_endpoint":   s.Storage.URL,
		"gkebackup_endpoint": s.GKEBackup.URL,
		"container_endpoint": s.Container.URL,
	}
	var sql, buckets, gke []map[string]string
	for _, i := range s.env.SQL {
		if strings.HasPrefix(i.Instance, "fediops-drill-") {
			continue // a leftover clone, not a database to audit
		}
		sql = append(sql, map[string]string{"project": i.Project, "instance": i.Instance})
	}
	for _, bk := range s.env.Buckets {
		buckets = append(buckets, map[string]string{"name": bk.Name})
	}
	for _, p := range s.env.GKE {
		gke = append(gke, map[string]string{"project": p.Project, "location": p.Location, "plan": p.Plan})
	}
	if sql != nil {
		b["cloudsql"] = sql
	}
	if buckets != nil {
		b["bucket"] = buckets
	}
	if gke != nil {
		b["gke"] = gke
	}
	return b
}

func (s *Server) record(api string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, Request{
			API: api, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Auth: r.Header.Get("Authorization") != "",
		})
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) findSQL(project, instance string) (SQLInstance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range s.env.SQL {
		if i.Project == project && i.Instance == instance {
			return i, true
		}
	}
	if d := s.dyn[key(project, instance)]; d != nil && d.source != "" {
		return SQLInstance{Project: project, Instance: instance, Resource: d.res}, true
	}
	return SQLInstance{}, false
}

func (s *Server) findBucket(name string) (Bucket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.env.Buckets {
		if b.Name == name {
			return b, true
		}
	}
	return Bucket{}, false
}

func (s *Server) findPlan(project, location, plan string) (GKEPlan, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.env.GKE {
		if p.Project == project && p.Location == location && p.Plan == plan {
			return p, true
		}
	}
	return GKEPlan{}, false
}

// --- Cloud SQL Admin -----------------------------------------------------------------------

func (s *Server) sqlFault(w http.ResponseWriter, r *http.Request, f Fault, verbatim string) bool {
	switch f {
	case OK:
		if verbatim != "" {
			writeRaw(w, verbatim)
			return true
		}
		return false
	case Forbidden:
		writeError(w, http.StatusForbidden, "", "notAuthorized", "The client is not authorized to make this request.")
	case NotFound:
		writeError(w, http.StatusNotFound, "", "instanceDoesNotExist", "The Cloud SQL instance does not exist.")
	default:
		s.commonFault(w, r, f)
	}
	return true
}

func (s *Server) sqlInstance(w http.ResponseWriter, r *http.Request) {
	i, ok := s.findSQL(r.PathValue("project"), r.PathValue("instance"))
	if !ok {
		s.sqlFault(w, r, NotFound, "")
		return
	}
	if s.sqlFault(w, r, i.InstanceFault, i.InstanceJSON) {
		return
	}
	s.mu.Lock()
	res := s.renderLocked(i.Project, i.Instance)
	s.mu.Unlock()
	if res == nil {
		s.sqlFault(w, r, NotFound, "")
		return
	}
	writeJSON(w, res)
}

func (s *Server) sqlRuns(w http.ResponseWriter, r *http.Request) {
	i, ok := s.findSQL(r.PathValue("project"), r.PathValue("instance"))
	if !ok {
		s.sqlFault(w, r, NotFound, "")
		return
	}
	if s.sqlFault(w, r, i.RunsFault, i.RunsJSON) {
		return
	}
	runs := append([]*sqladmin.BackupRun(nil), i.Runs...)
	// "A list of backup runs in reverse chronological order of the enqueued time."
	sort.SliceStable(runs, func(a, b int) bool { return runs[a].EnqueuedTime > runs[b].EnqueuedTime })
	size := i.PageSize
	if m, err := strconv.Atoi(r.URL.Query().Get("maxResults")); err == nil && m > 0 && (size == 0 || m < size) {
		size = m
	}
	page, next, ok := paginate(len(runs), size, r.URL.Query().Get("pageToken"))
	if !ok {
		writeError(w, http.StatusBadRequest, "", "invalid", "Invalid request: pageToken is invalid.")
		return
	}
	writeJSON(w, &sqladmin.BackupRunsListResponse{
		Kind:          "sql#backupRunsList",
		Items:         runs[page[0]:page[1]],
		NextPageToken: next,
	})
}

func (s *Server) sqlRecovery(w http.ResponseWriter, r *http.Request) {
	i, ok := s.findSQL(r.PathValue("project"), r.PathValue("instance"))
	if !ok {
		s.sqlFault(w, r, NotFound, "")
		return
	}
	if s.sqlFault(w, r, i.RecoveryFault, i.RecoveryJSON) {
		return
	}
	res := i.Recovery
	if res == nil {
		res = &sqladmin.SqlInstancesGetLatestRecoveryTimeResponse{Kind: "sql#getLatestRecoveryTime"}
	}
	writeJSON(w, res)
}

// --- Cloud Storage -------------------------------------------------------------------------

func (s *Server) bucket(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("bucket")
	b, ok := s.findBucket(name)
	f := b.Fault
	if !ok {
		f = NotFound
	}
	switch f {
	case OK:
		if b.JSON != "" {
			writeRaw(w, b.JSON)
			return
		}
		res := b.Resource
		if res == nil {
			res = &rawstorage.Bucket{Kind: "storage#bucket", Name: name, Id: name}
		}
		writeJSON(w, res)
	case Forbidden:
		writeError(w, http.StatusForbidden, "", "forbidden",
			"fediops-backupaudit@fediops-demo.iam.gserviceaccount.com does not have storage.buckets.get access to the Google Cloud Storage bucket. Permission 'storage.buckets.get' denied on resource (or it may not exist).")
	case NotFound:
		writeError(w, http.StatusNotFound, "", "notFound", "The specified bucket does not exist.")
	default:
		s.commonFault(w, r, f)
	}
}

// --- Backup for GKE ------------------------------------------------------------------------

func (s *Server) gkeFault(w http.ResponseWriter, r *http.Request, f Fault, verbatim, resource, permission string) bool {
	switch f {
	case OK:
		if verbatim != "" {
			writeRaw(w, verbatim)
			return true
		}
		return false
	case Forbidden:
		writeGRPCError(w, http.StatusForbidden, "PERMISSION_DENIED",
			fmt.Sprintf("Permission '%s' denied on resource '//gkebackup.googleapis.com/%s' (or it may not exist).", permission, resource),
			"IAM_PERMISSION_DENIED", map[string]string{"permission": permission, "resource": resource})
	case NotFound:
		writeGRPCError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("Resource '%s' was not found", resource), "", nil)
	default:
		s.commonFault(w, r, f)
	}
	return true
}

func (s *Server) gkePlan(w http.ResponseWriter, r *http.Request) {
	project, location, plan := r.PathValue("project"), r.PathValue("location"), r.PathValue("plan")
	name := PlanName(project, location, plan)
	p, ok := s.findPlan(project, location, plan)
	f := p.PlanFault
	if !ok {
		f = NotFound
	}
	if s.gkeFault(w, r, f, p.PlanJSON, name, "gkebackup.backupPlans.get") {
		return
	}
	res := p.Resource
	if res == nil {
		res = &gkebackuppb.BackupPlan{Name: name}
	}
	writeProto(w, r, res)
}

func (s *Server) gkeBackups(w http.ResponseWriter, r *http.Request) {
	project, location, plan := r.PathValue("project"), r.PathValue("location"), r.PathValue("plan")
	name := PlanName(project, location, plan)
	p, ok := s.findPlan(project, location, plan)
	f := p.BackupsFault
	if !ok {
		f = NotFound
	}
	if s.gkeFault(w, r, f, p.BackupsJSON, name, "gkebackup.backups.list") {
		return
	}
	size := p.PageSize
	if m, err := strconv.Atoi(r.URL.Query().Get("pageSize")); err == nil && m > 0 && (size == 0 || m < size) {
		size = m
	}
	page, next, ok := paginate(len(p.Backups), size, r.URL.Query().Get("pageToken"))
	if !ok {
		writeGRPCError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid page token.", "", nil)
		return
	}
	writeProto(w, r, &gkebackuppb.ListBackupsResponse{
		Backups:       p.Backups[page[0]:page[1]],
		NextPageToken: next,
	})
}

// --- shared --------------------------------------------------------------------------------

// commonFault answers the faults that look the same on every API.
func (s *Server) commonFault(w http.ResponseWriter, r *http.Request, f Fault) {
	switch f {
	case Internal:
		writeGRPCError(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered.", "", nil)
	case Unavailable:
		writeGRPCError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.", "", nil)
	case Malformed:
		writeRaw(w, `{"kind": "truncated", "name": "half an answer", "settings": {"backupConfiguration": {"enabled": tr`)
	case Hang:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
	default:
		writeGRPCError(w, http.StatusInternalServerError, "INTERNAL", "unknown fault "+f.String(), "", nil)
	}
}

// paginate returns the [from, to) slice of n items for a page of size (0: all) starting at
// the offset encoded in token, and the next token ("" on the last page).
func paginate(n, size int, token string) ([2]int, string, bool) {
	from := 0
	if token != "" {
		v, err := strconv.Atoi(strings.TrimPrefix(token, "page-"))
		if err != nil || v < 0 || v > n || !strings.HasPrefix(token, "page-") {
			return [2]int{}, "", false
		}
		from = v
	}
	to := n
	if size > 0 && from+size < n {
		to = from + size
	}
	next := ""
	if to < n {
		next = "page-" + strconv.Itoa(to)
	}
	return [2]int{from, to}, next, true
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeGRPCError(w, http.StatusInternalServerError, "INTERNAL", "fake: "+err.Error(), "", nil)
		return
	}
	writeRaw(w, string(b))
}

func writeProto(w http.ResponseWriter, r *http.Request, m proto.Message) {
	opts := protojson.MarshalOptions{
		UseEnumNumbers: strings.Contains(r.URL.Query().Get("$alt"), "enum-encoding=int"),
	}
	b, err := opts.Marshal(m)
	if err != nil {
		writeGRPCError(w, http.StatusInternalServerError, "INTERNAL", "fake: "+err.Error(), "", nil)
		return
	}
	writeRaw(w, string(b))
}

func writeRaw(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body))
}

// writeError writes a discovery-style (Cloud SQL Admin, Cloud Storage) error body.
func writeError(w http.ResponseWriter, code int, status, reason, msg string) {
	item := map[string]string{"message": msg, "domain": "global"}
	if reason != "" {
		item["reason"] = reason
	}
	e := map[string]any{"code": code, "message": msg, "errors": []any{item}}
	if status != "" {
		e["status"] = status
	}
	writeErrorBody(w, code, map[string]any{"error": e})
}

// writeGRPCError writes a google.rpc.Status-style error body (Backup for GKE and most
// 5xx answers).
func writeGRPCError(w http.ResponseWriter, code int, status, msg, reason string, metadata map[string]string) {
	e := map[string]any{"code": code, "message": msg, "status": status}
	if reason != "" {
		e["details"] = []any{map[string]any{
			"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
			"reason":   reason,
			"domain":   "gkebackup.googleapis.com",
			"metadata": metadata,
		}}
	}
	writeErrorBody(w, code, map[string]any{"error": e})
}

func writeErrorBody(w http.ResponseWriter, code int, body any) {
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
