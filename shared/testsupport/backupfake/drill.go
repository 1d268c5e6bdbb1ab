package backupfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	sqladmin "google.golang.org/api/sqladmin/v1"
)

// Drill says how the fake Cloud SQL Admin API treats clones of an instance (instances.clone),
// and how long its operations take, in the fake's clock (SetClock).
type Drill struct {
	// CloneDelay is how long after the request the clone operation is DONE and the clone
	// RUNNABLE (default 6 minutes; Google's clone_instance tool page says "several minutes").
	CloneDelay time.Duration
	// DeleteDelay is how long a delete takes (default 90s); PatchDelay a patch (default 20s).
	DeleteDelay, PatchDelay time.Duration
	// CloneFault makes the clone request itself fail (403, 500...).
	CloneFault Fault
	// CloneError makes the clone operation end DONE with this error; the clone is then left
	// in state FAILED (and must still be deleted).
	CloneError string
	// CloneStuck keeps the clone operation RUNNING and the clone PENDING_CREATE forever.
	CloneStuck bool
	// DeletionProtection makes clones inherit deletion protection: instances.delete answers
	// 400 until a patch turns it off.
	DeletionProtection bool
	// DeleteFault makes instances.delete of its clones fail.
	DeleteFault Fault
}

func (d Drill) withDefaults() Drill {
	if d.CloneDelay == 0 {
		d.CloneDelay = 6 * time.Minute
	}
	if d.DeleteDelay == 0 {
		d.DeleteDelay = 90 * time.Second
	}
	if d.PatchDelay == 0 {
		d.PatchDelay = 20 * time.Second
	}
	return d
}

// Quick returns delays for real-time runs (the demo, the deployed-path test): operations
// finish after a moment instead of minutes.
func Quick() Drill {
	return Drill{CloneDelay: 1500 * time.Millisecond, DeleteDelay: 500 * time.Millisecond, PatchDelay: 200 * time.Millisecond}
}

// instance is an instance created or deleted while the fake runs.
type instance struct {
	project, name, source string
	res                   *sqladmin.DatabaseInstance
	created, readyAt      time.Time
	goneAt                time.Time // zero while not being deleted
	failed, stuck         bool
}

func (i *instance) state(now time.Time) (string, bool) {
	switch {
	case !i.goneAt.IsZero() && !now.Before(i.goneAt):
		return "", false
	case !i.goneAt.IsZero():
		return "PENDING_DELETE", true
	case i.failed && !now.Before(i.readyAt):
		return "FAILED", true
	case i.stuck || now.Before(i.readyAt):
		return "PENDING_CREATE", true
	}
	return "RUNNABLE", true
}

// operation is a long-running operation of the fake.
type operation struct {
	op      sqladmin.Operation
	started time.Time
	done    time.Time
	never   bool
	errMsg  string
}

func (o *operation) render(now time.Time) *sqladmin.Operation {
	out := o.op
	switch {
	case now.Before(o.started):
		out.Status = "PENDING"
	case o.never || now.Before(o.done):
		out.Status = "RUNNING"
		out.StartTime = ts(o.started)
	default:
		out.Status = "DONE"
		out.StartTime = ts(o.started)
		out.EndTime = ts(o.done)
		if o.errMsg != "" {
			out.Error = &sqladmin.OperationErrors{Kind: "sql#operationErrors", Errors: []*sqladmin.OperationError{{
				Kind: "sql#operationError", Code: "INTERNAL_ERROR", Message: o.errMsg,
			}}}
		}
	}
	return &out
}

// SetClock makes the fake's operations and clones advance on now (default time.Now).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

func (s *Server) clock() time.Time {
	if s.now == nil {
		return time.Now()
	}
	return s.now()
}

func key(project, name string) string { return project + "/" + name }

// newOperation registers an operation; s.mu must be held.
func (s *Server) newOperation(project, typ, target string, now time.Time, took time.Duration) *operation {
	s.opSeq++
	name := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", now.Unix(), s.opSeq, s.opSeq, s.opSeq, s.opSeq)
	o := &operation{
		op: sqladmin.Operation{
			Kind: "sql#operation", Name: name, OperationType: typ, TargetId: target, TargetProject: project,
			TargetLink: "https://sqladmin.googleapis.com/v1/projects/" + project + "/instances/" + target,
			SelfLink:   "https://sqladmin.googleapis.com/v1/projects/" + project + "/operations/" + name,
			InsertTime: ts(now), User: "fediops-backupaudit@" + project + ".iam.gserviceaccount.com",
		},
		started: now.Add(min(2*time.Second, took)),
		done:    now.Add(took),
	}
	if s.ops == nil {
		s.ops = map[string]*operation{}
	}
	s.ops[key(project, name)] = o
	return o
}

// Instances returns the names of the project's instances as the fake holds them now (static
// ones not deleted, plus live clones), sorted.
func (s *Server) Instances(project string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, i := range s.listLocked(project) {
		out = append(out, i.Name)
	}
	sort.Strings(out)
	return out
}

// listLocked renders the project's instances; s.mu must be held.
func (s *Server) listLocked(project string) []*sqladmin.DatabaseInstance {
	now := s.clock()
	var out []*sqladmin.DatabaseInstance
	for _, i := range s.env.SQL {
		if i.Project != project {
			continue
		}
		if d, ok := s.dyn[key(project, i.Instance)]; ok {
			if _, alive := d.state(now); !alive {
				continue
			}
		}
		if r := s.renderLocked(i.Project, i.Instance); r != nil {
			out = append(out, r)
		}
	}
	for _, d := range s.dyn {
		if d.project != project || d.source == "" {
			continue
		}
		if r := s.renderLocked(project, d.name); r != nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// renderLocked returns an instance as instances.get shows it now, or nil if it does not
// exist; s.mu must be held.
func (s *Server) renderLocked(project, name string) *sqladmin.DatabaseInstance {
	now := s.clock()
	d := s.dyn[key(project, name)]
	var res *sqladmin.DatabaseInstance
	if d != nil && d.source != "" {
		res = d.res
	} else {
		for _, i := range s.env.SQL {
			if i.Project == project && i.Instance == name {
				res = i.Resource
				if res == nil {
					res = &sqladmin.DatabaseInstance{Kind: "sql#instance", Name: name, Project: project}
				}
			}
		}
	}
	if res == nil {
		return nil
	}
	cp := *res
	if d != nil {
		st, alive := d.state(now)
		if !alive {
			return nil
		}
		cp.State = st
	}
	return &cp
}

func (s *Server) sqlList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	items := s.listLocked(r.PathValue("project"))
	s.mu.Unlock()
	writeJSON(w, &sqladmin.InstancesListResponse{Kind: "sql#instancesList", Items: items})
}

func (s *Server) sqlClone(w http.ResponseWriter, r *http.Request) {
	project, source := r.PathValue("project"), r.PathValue("instance")
	var req sqladmin.InstancesCloneRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.CloneContext == nil || req.CloneContext.DestinationInstanceName == "" {
		writeError(w, http.StatusBadRequest, "", "invalid", "Invalid request: cloneContext.destinationInstanceName is required.")
		return
	}
	src, ok := s.findSQL(project, source)
	if !ok || s.isGone(project, source) {
		s.sqlFault(w, r, NotFound, "")
		return
	}
	d := src.Drill.withDefaults()
	if d.CloneFault != OK {
		s.sqlFault(w, r, d.CloneFault, "")
		return
	}
	dest := req.CloneContext.DestinationInstanceName
	now := s.clock()
	var pit time.Time
	if p := req.CloneContext.PointInTime; p != "" {
		t, err := time.Parse(time.RFC3339Nano, p)
		if err != nil {
			writeError(w, http.StatusBadRequest, "", "invalid", "Invalid value at 'body.clone_context.point_in_time' (type.googleapis.com/google.protobuf.Timestamp), Field 'pointInTime', Invalid time format")
			return
		}
		pit = t
	}
	if !pit.IsZero() && src.Recovery != nil {
		latest, _ := time.Parse(time.RFC3339Nano, src.Recovery.LatestRecoveryTime)
		earliest, _ := time.Parse(time.RFC3339Nano, src.Recovery.EarliestRecoveryTime)
		if (!latest.IsZero() && pit.After(latest)) || (!earliest.IsZero() && pit.Before(earliest)) || pit.After(now) {
			writeError(w, http.StatusBadRequest, "", "invalid", "Invalid request: the point in time is outside the instance's recovery window.")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.renderLocked(project, dest) != nil {
		writeError(w, http.StatusConflict, "", "instanceAlreadyExists", "The Cloud SQL instance already exists.")
		return
	}
	res := &sqladmin.DatabaseInstance{Kind: "sql#instance", Name: dest, Project: project}
	if src.Resource != nil {
		b, _ := json.Marshal(src.Resource)
		_ = json.Unmarshal(b, res)
	}
	res.Name = dest
	res.ConnectionName = project + ":" + SampleLocation + ":" + dest
	res.CreateTime = ts(now)
	res.SelfLink = "https://sqladmin.googleapis.com/v1/projects/" + project + "/instances/" + dest
	if res.Settings == nil {
		res.Settings = &sqladmin.Settings{Kind: "sql#settings", Tier: "db-custom-1-3840"}
	}
	if d.DeletionProtection {
		res.Settings.DeletionProtectionEnabled = true
	}
	if s.dyn == nil {
		s.dyn = map[string]*instance{}
	}
	s.dyn[key(project, dest)] = &instance{project: project, name: dest, source: source, res: res,
		created: now, readyAt: now.Add(d.CloneDelay), failed: d.CloneError != "", stuck: d.CloneStuck}
	o := s.newOperation(project, "CLONE", dest, now, d.CloneDelay)
	o.never = d.CloneStuck
	o.errMsg = d.CloneError
	s.clones = append(s.clones, Clone{Project: project, Source: source, Name: dest, PointInTime: pit, Requested: now})
	writeJSON(w, o.render(now))
}

// Clone is one clone request the fake accepted.
type Clone struct {
	Project, Source, Name string
	PointInTime           time.Time
	Requested             time.Time
}

// Clones returns the clone requests accepted so far.
func (s *Server) Clones() []Clone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Clone(nil), s.clones...)
}

func (s *Server) isGone(project, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renderLocked(project, name) == nil
}

// drillOf returns the Drill behaviour for an instance: its source's for a clone.
func (s *Server) drillOf(project, name string) Drill {
	s.mu.Lock()
	src := name
	if d := s.dyn[key(project, name)]; d != nil && d.source != "" {
		src = d.source
	}
	s.mu.Unlock()
	i, _ := s.findSQL(project, src)
	return i.Drill.withDefaults()
}

func (s *Server) sqlOperation(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	o := s.ops[key(r.PathValue("project"), r.PathValue("operation"))]
	var out *sqladmin.Operation
	if o != nil {
		out = o.render(s.clock())
	}
	s.mu.Unlock()
	if out == nil {
		writeError(w, http.StatusNotFound, "", "operationDoesNotExist", "The Cloud SQL operation does not exist.")
		return
	}
	writeJSON(w, out)
}

func (s *Server) sqlDelete(w http.ResponseWriter, r *http.Request) {
	project, name := r.PathValue("project"), r.PathValue("instance")
	d := s.drillOf(project, name)
	if d.DeleteFault != OK {
		s.sqlFault(w, r, d.DeleteFault, "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := s.renderLocked(project, name)
	if res == nil {
		writeError(w, http.StatusNotFound, "", "instanceDoesNotExist", "The Cloud SQL instance does not exist.")
		return
	}
	if res.Settings != nil && res.Settings.DeletionProtectionEnabled {
		writeError(w, http.StatusBadRequest, "", "invalid", "The instance is protected from deletion. Disable deletion protection (settings.deletionProtectionEnabled) and try again.")
		return
	}
	now := s.clock()
	dyn := s.dyn[key(project, name)]
	if dyn == nil {
		if s.dyn == nil {
			s.dyn = map[string]*instance{}
		}
		dyn = &instance{project: project, name: name}
		s.dyn[key(project, name)] = dyn
	}
	if dyn.goneAt.IsZero() {
		dyn.goneAt = now.Add(d.DeleteDelay)
	}
	s.deletes = append(s.deletes, key(project, name))
	writeJSON(w, s.newOperation(project, "DELETE", name, now, d.DeleteDelay).render(now))
}

// Deleted returns the instances ("project/name") a delete was accepted for, in order.
func (s *Server) Deleted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deletes...)
}

func (s *Server) sqlPatch(w http.ResponseWriter, r *http.Request) {
	project, name := r.PathValue("project"), r.PathValue("instance")
	var patch struct {
		Settings *struct {
			Tier                      string `json:"tier"`
			DeletionProtectionEnabled *bool  `json:"deletionProtectionEnabled"`
		} `json:"settings"`
	}
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
		writeError(w, http.StatusBadRequest, "", "invalid", "Invalid JSON payload received.")
		return
	}
	d := s.drillOf(project, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	dyn := s.dyn[key(project, name)]
	if dyn == nil || dyn.source == "" {
		// Only clones are patchable in this fake; the drill never patches anything else.
		writeError(w, http.StatusForbidden, "", "notAuthorized", "The client is not authorized to make this request.")
		return
	}
	if patch.Settings != nil {
		if patch.Settings.Tier != "" {
			dyn.res.Settings.Tier = patch.Settings.Tier
		}
		if p := patch.Settings.DeletionProtectionEnabled; p != nil {
			dyn.res.Settings.DeletionProtectionEnabled = *p
		}
	}
	now := s.clock()
	writeJSON(w, s.newOperation(project, "UPDATE", name, now, d.PatchDelay).render(now))
}
