package backupfake_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func start(t *testing.T, env backupfake.Env) *backupfake.Server {
	s := backupfake.Start(env)
	t.Cleanup(s.Close)
	return s
}

func TestWireShapes(t *testing.T) {
	s := start(t, backupfake.Merge(backupfake.Healthy(now), backupfake.Broken(now)))

	// Discovery APIs omit false booleans and empty fields, like Google does.
	code, body := get(t, s.SQLAdmin.URL+"/v1/projects/fediops-broken/instances/mastodon-db")
	if code != 200 || strings.Contains(body, "pointInTimeRecoveryEnabled") || !strings.Contains(body, `"enabled":true`) ||
		!strings.Contains(body, `"kind":"sql#backupConfiguration"`) {
		t.Errorf("broken instance: %d %s", code, body)
	}
	code, body = get(t, s.SQLAdmin.URL+"/v1/projects/fediops-healthy/instances/mastodon-db/getLatestRecoveryTime")
	if code != 200 || !strings.Contains(body, `"latestRecoveryTime":"2026-11-20T11:58:30.000Z"`) {
		t.Errorf("recovery time: %d %s", code, body)
	}

	// Soft delete disabled is an explicit "0"; int64 fields are JSON strings.
	code, body = get(t, s.Storage.URL+"/storage/v1/b/broken-mastodon-media")
	if code != 200 || !strings.Contains(body, `"retentionDurationSeconds":"0"`) || strings.Contains(body, "versioning") ||
		!strings.Contains(body, `"locationType":"region"`) {
		t.Errorf("broken bucket: %d %s", code, body)
	}

	// Backup for GKE: enum numbers when the client asks for them, names otherwise.
	plan := s.GKEBackup.URL + "/v1/" + backupfake.PlanName(backupfake.HealthyProject, backupfake.SampleLocation, backupfake.SamplePlan)
	_, body = get(t, plan+"?%24alt=json%3Benum-encoding%3Dint")
	if !strings.Contains(body, `"state":3`) || !strings.Contains(body, `"cronSchedule":"0 3 * * *"`) {
		t.Errorf("plan with int enums: %s", body)
	}
	_, body = get(t, plan)
	if !strings.Contains(body, `"state":"READY"`) || strings.Contains(body, "paused") || strings.Contains(body, "deactivated") {
		t.Errorf("plan with enum names: %s", body)
	}
}

func TestPagination(t *testing.T) {
	s := start(t, backupfake.Healthy(now))
	base := s.SQLAdmin.URL + "/v1/projects/fediops-healthy/instances/mastodon-db/backupRuns"
	var ids []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		url := base + "?maxResults=100"
		if token != "" {
			url += "&pageToken=" + token
		}
		_, body := get(t, url)
		var page struct {
			Items []struct {
				ID           string `json:"id"`
				EnqueuedTime string `json:"enqueuedTime"`
			} `json:"items"`
			NextPageToken string `json:"nextPageToken"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > 4 {
			t.Errorf("page of %d runs, sample pages by 4", len(page.Items))
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if page.NextPageToken == "" {
			break
		}
		token = page.NextPageToken
	}
	if len(ids) != 9 {
		t.Errorf("got %d runs over all pages, want 9", len(ids))
	}
	code, body := get(t, base+"?pageToken=garbage")
	if code != 400 || !strings.Contains(body, `"code":400`) {
		t.Errorf("bad token: %d %s", code, body)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		fault backupfake.Fault
		code  int
		body  string
	}{
		{backupfake.Forbidden, 403, `"code":403`},
		{backupfake.NotFound, 404, `"code":404`},
		{backupfake.Internal, 500, `"status":"INTERNAL"`},
		{backupfake.Unavailable, 503, `"status":"UNAVAILABLE"`},
		{backupfake.Malformed, 200, `"enabled": tr`},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			env := backupfake.Healthy(now)
			env.SQL[0].InstanceFault = tt.fault
			env.Buckets[0].Fault = tt.fault
			env.GKE[0].BackupsFault = tt.fault
			s := start(t, env)
			for _, url := range []string{
				s.SQLAdmin.URL + "/v1/projects/fediops-healthy/instances/mastodon-db",
				s.Storage.URL + "/storage/v1/b/" + backupfake.HealthyBucket,
				s.GKEBackup.URL + "/v1/" + backupfake.PlanName(backupfake.HealthyProject, backupfake.SampleLocation, backupfake.SamplePlan) + "/backups",
			} {
				code, body := get(t, url)
				if code != tt.code || !strings.Contains(body, tt.body) {
					t.Errorf("%s: %d %s", url, code, body)
				}
				if tt.fault != backupfake.Malformed {
					var e struct {
						Error struct {
							Code    int    `json:"code"`
							Message string `json:"message"`
						} `json:"error"`
					}
					if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != tt.code || e.Error.Message == "" {
						t.Errorf("%s: not a Google error body: %s", url, body)
					}
				}
			}
			// The other calls of the same resources still answer.
			if code, _ := get(t, s.SQLAdmin.URL+"/v1/projects/fediops-healthy/instances/mastodon-db/backupRuns"); code != 200 {
				t.Errorf("backupRuns: %d", code)
			}
		})
	}
}

func TestHangIsReleasedByClientAndClose(t *testing.T) {
	env := backupfake.Healthy(now)
	env.Buckets[0].Fault = backupfake.Hang
	s := backupfake.Start(env)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Storage.URL+"/storage/v1/b/"+backupfake.HealthyBucket, nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("hanging bucket answered")
	}

	// A request still hanging when the server closes does not block Close.
	go func() {
		req, _ := http.NewRequest(http.MethodGet, s.Storage.URL+"/storage/v1/b/"+backupfake.HealthyBucket, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hanging request")
	}
}

func TestUnknownResourcesAndRoutes(t *testing.T) {
	s := start(t, backupfake.Healthy(now))
	for _, url := range []string{
		s.SQLAdmin.URL + "/v1/projects/other/instances/db",
		s.SQLAdmin.URL + "/v1/projects/other/instances/db/backupRuns",
		s.Storage.URL + "/storage/v1/b/other",
		s.GKEBackup.URL + "/v1/projects/other/locations/l/backupPlans/x",
		s.GKEBackup.URL + "/v1/projects/other/locations/l/backupPlans/x/backups",
		s.GKEBackup.URL + "/v2/whatever",
	} {
		if code, body := get(t, url); code != 404 || !strings.Contains(body, `"code":404`) {
			t.Errorf("%s: %d %s", url, code, body)
		}
	}
}

func TestConfigAndRequests(t *testing.T) {
	s := start(t, backupfake.Broken(now))
	cfg := s.Config()
	if cfg["sqladmin_endpoint"] != s.SQLAdmin.URL || cfg["storage_endpoint"] != s.Storage.URL || cfg["gkebackup_endpoint"] != s.GKEBackup.URL {
		t.Errorf("endpoints %+v", cfg)
	}
	sql, _ := cfg["cloudsql"].([]map[string]string)
	buckets, _ := cfg["bucket"].([]map[string]string)
	gke, _ := cfg["gke"].([]map[string]string)
	if len(sql) != 1 || sql[0]["project"] != backupfake.BrokenProject ||
		len(buckets) != 2 || buckets[1]["name"] != backupfake.ForbiddenBucket ||
		len(gke) != 1 || gke[0]["plan"] != backupfake.SamplePlan {
		t.Errorf("targets %+v", cfg)
	}
	get(t, s.Storage.URL+"/storage/v1/b/x?projection=full")
	r := s.Requests()
	if len(r) != 1 || r[0].API != "storage" || r[0].Path != "/storage/v1/b/x" || r[0].Query != "projection=full" || r[0].Auth {
		t.Errorf("requests %+v", r)
	}

	s.SetEnv(backupfake.Env{})
	if code, _ := get(t, s.SQLAdmin.URL+"/v1/projects/fediops-broken/instances/mastodon-db"); code != 404 {
		t.Errorf("after SetEnv: %d", code)
	}
}

func TestSamplesAreDeterministic(t *testing.T) {
	a, _ := json.Marshal(backupfake.Healthy(now).SQL[0].Runs)
	b, _ := json.Marshal(backupfake.Healthy(now).SQL[0].Runs)
	if string(a) != string(b) {
		t.Error("Healthy(now) differs between calls")
	}
	// Mutating one sample does not touch another.
	h := backupfake.Healthy(now)
	h.SQL[0].Resource.Settings.BackupConfiguration.Enabled = false
	if !backupfake.Healthy(now).SQL[0].Resource.Settings.BackupConfiguration.Enabled {
		t.Error("samples share state")
	}
}

func send(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCloneLifecycle: a clone's operation and instance move on the fake's clock as Cloud SQL's
// do: PENDING, RUNNING, DONE; PENDING_CREATE, RUNNABLE; a delete makes it PENDING_DELETE, then gone.
func TestCloneLifecycle(t *testing.T) {
	at := now
	s := start(t, backupfake.Healthy(now))
	s.SetClock(func() time.Time { return at })
	base := s.SQLAdmin.URL + "/v1/projects/fediops-healthy"
	code, body := send(t, "POST", base+"/instances/mastodon-db/clone",
		`{"cloneContext":{"kind":"sql#cloneContext","destinationInstanceName":"fediops-drill-mastodon-db-202611201200","pointInTime":"2026-11-20T11:50:00Z"}}`)
	var op struct{ Name, Status, OperationType, TargetId, EndTime string }
	if err := json.Unmarshal([]byte(body), &op); code != 200 || err != nil || op.Status != "PENDING" || op.OperationType != "CLONE" {
		t.Fatalf("clone: %d %s", code, body)
	}
	if code, _ := send(t, "POST", base+"/instances/mastodon-db/clone", `{"cloneContext":{"destinationInstanceName":"fediops-drill-mastodon-db-202611201200"}}`); code != 409 {
		t.Errorf("second clone into the same name: %d", code)
	}
	if code, body := send(t, "POST", base+"/instances/mastodon-db/clone", `{"cloneContext":{"destinationInstanceName":"x","pointInTime":"2026-11-01T00:00:00Z"}}`); code != 400 || !strings.Contains(body, "recovery window") {
		t.Errorf("point in time before the window: %d %s", code, body)
	}
	state := func(name string) string {
		code, body := get(t, base+"/instances/"+name)
		if code == 404 {
			return "404"
		}
		var i struct{ State string }
		_ = json.Unmarshal([]byte(body), &i)
		return i.State
	}
	opStatus := func() string {
		_, body := get(t, base+"/operations/"+op.Name)
		var o struct{ Status string }
		_ = json.Unmarshal([]byte(body), &o)
		return o.Status
	}
	at = now.Add(time.Minute)
	if st, os := state("fediops-drill-mastodon-db-202611201200"), opStatus(); st != "PENDING_CREATE" || os != "RUNNING" {
		t.Errorf("after 1 minute: %s, operation %s", st, os)
	}
	at = now.Add(6 * time.Minute)
	if st, os := state("fediops-drill-mastodon-db-202611201200"), opStatus(); st != "RUNNABLE" || os != "DONE" {
		t.Errorf("after 6 minutes: %s, operation %s", st, os)
	}
	_, list := get(t, base+"/instances")
	if !strings.Contains(list, `"name":"fediops-drill-mastodon-db-202611201200"`) || !strings.Contains(list, `"name":"mastodon-db"`) {
		t.Errorf("list: %s", list)
	}
	if code, _ := send(t, "PATCH", base+"/instances/mastodon-db", `{"settings":{"tier":"db-f1-micro"}}`); code != 403 {
		t.Errorf("patching a source: %d", code)
	}
	if code, _ := send(t, "DELETE", base+"/instances/fediops-drill-mastodon-db-202611201200", ""); code != 200 {
		t.Errorf("delete: %d", code)
	}
	if st := state("fediops-drill-mastodon-db-202611201200"); st != "PENDING_DELETE" {
		t.Errorf("after delete: %s", st)
	}
	at = now.Add(10 * time.Minute)
	if st := state("fediops-drill-mastodon-db-202611201200"); st != "404" {
		t.Errorf("after the delete finished: %s", st)
	}
	if d := s.Deleted(); len(d) != 1 || len(s.Clones()) != 1 {
		t.Errorf("deleted %v, clones %v", d, s.Clones())
	}
}

// TestClusterAndPods: clusters.get names the Kubernetes API and its CA; the API serves pods
// by field selector and answers GKE's 403.
func TestClusterAndPods(t *testing.T) {
	env := backupfake.Broken(now)
	env.Clusters[0].ForbiddenList = []string{"kube-system"}
	s := start(t, env)
	name := backupfake.ClusterName(backupfake.BrokenProject, backupfake.SampleLocation, backupfake.SampleCluster)
	code, body := get(t, s.Container.URL+"/v1/"+name)
	if code != 200 || !strings.Contains(body, `"clusterCaCertificate":"`) || !strings.Contains(body, `"endpoint":"127.0.0.1:`) {
		t.Errorf("cluster: %d %s", code, body)
	}
	if code, body := get(t, s.Container.URL+"/v1/projects/fediops-broken/locations/europe-west1/clusters/nope"); code != 404 {
		t.Errorf("unknown cluster: %d %s", code, body)
	}
	env.Clusters[0].ClusterFault = backupfake.Forbidden
	s2 := start(t, env)
	if code, body := get(t, s2.Container.URL+"/v1/"+name); code != 403 || !strings.Contains(body, `Required \"container.clusters.get\" permission(s)`) {
		t.Errorf("forbidden cluster: %d %s", code, body)
	}
	if s.KubeURL(name) == "" {
		t.Fatal("no Kubernetes API")
	}
}
