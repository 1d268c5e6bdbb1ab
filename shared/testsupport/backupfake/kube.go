package backupfake

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"time"

	container "google.golang.org/api/container/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Cluster is a GKE cluster: clusters.get on the fake GKE API answers its endpoint (a loopback
// TLS server speaking the Kubernetes API) and that server's CA.
type Cluster struct {
	Project, Location, Name string
	// Pods are the cluster's pods; deletions remove them.
	Pods []corev1.Pod
	// ClusterFault makes clusters.get fail (Forbidden names container.clusters.get).
	ClusterFault Fault
	// ForbiddenList and ForbiddenDelete make the Kubernetes API refuse listing (in the
	// namespaces given, or everywhere with "*") and deleting pods, as GKE does without the
	// IAM permission.
	ForbiddenList   []string
	ForbiddenDelete bool
	// Token, when set, is the only bearer token the Kubernetes API accepts (401 otherwise).
	Token string
	// PageSize caps pods per page (0: as many as the client asks for).
	PageSize int
}

// ClusterName returns projects/P/locations/L/clusters/C.
func ClusterName(project, location, name string) string {
	return "projects/" + project + "/locations/" + location + "/clusters/" + name
}

// Resource is the cluster's resource name.
func (c Cluster) Resource() string { return ClusterName(c.Project, c.Location, c.Name) }

type kubeServer struct {
	srv     *httptest.Server
	cluster string
}

// startClusters starts a Kubernetes API server for every cluster that has none yet.
func (s *Server) startClusters(clusters []Cluster) {
	for _, c := range clusters {
		name := c.Resource()
		s.mu.Lock()
		_, ok := s.kube[name]
		s.mu.Unlock()
		if ok {
			continue
		}
		k := &kubeServer{cluster: name}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /api/v1/pods", func(w http.ResponseWriter, r *http.Request) { s.listPods(w, r, name, "") })
		mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods", func(w http.ResponseWriter, r *http.Request) {
			s.listPods(w, r, name, r.PathValue("ns"))
		})
		mux.HandleFunc("DELETE /api/v1/namespaces/{ns}/pods/{pod}", func(w http.ResponseWriter, r *http.Request) {
			s.deletePod(w, r, name, r.PathValue("ns"), r.PathValue("pod"))
		})
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource", "")
		})
		k.srv = httptest.NewTLSServer(s.record("kubernetes", mux))
		s.mu.Lock()
		if s.kube == nil {
			s.kube = map[string]*kubeServer{}
		}
		s.kube[name] = k
		s.mu.Unlock()
	}
}

func (s *Server) findCluster(name string) (Cluster, int, bool) {
	for i, c := range s.env.Clusters {
		if c.Resource() == name {
			return c, i, true
		}
	}
	return Cluster{}, 0, false
}

// KubeURL returns the Kubernetes API URL of a cluster ("" if unknown).
func (s *Server) KubeURL(cluster string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.kube[cluster]; k != nil {
		return k.srv.URL
	}
	return ""
}

// Pods returns a cluster's pods as the fake holds them now.
func (s *Server) Pods(cluster string) []corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, _ := s.findCluster(cluster)
	return append([]corev1.Pod(nil), c.Pods...)
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	name := ClusterName(r.PathValue("project"), r.PathValue("location"), r.PathValue("cluster"))
	s.mu.Lock()
	c, _, ok := s.findCluster(name)
	k := s.kube[name]
	s.mu.Unlock()
	f := c.ClusterFault
	if !ok || k == nil {
		f = NotFound
	}
	switch f {
	case OK:
	case Forbidden:
		// The GKE API's classic answer, naming the permission.
		writeGRPCError(w, http.StatusForbidden, "PERMISSION_DENIED",
			fmt.Sprintf("Required \"container.clusters.get\" permission(s) for \"%s\".", name), "", nil)
		return
	case NotFound:
		writeGRPCError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("Not found: %s.", name), "", nil)
		return
	default:
		s.commonFault(w, r, f)
		return
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.srv.Certificate().Raw})
	host := strings.TrimPrefix(k.srv.URL, "https://")
	writeJSON(w, &container.Cluster{
		Name:                 c.Name,
		Location:             c.Location,
		Status:               "RUNNING",
		Endpoint:             host,
		CurrentMasterVersion: "1.33.5-gke.1201000",
		SelfLink:             "https://container.googleapis.com/v1/" + name,
		MasterAuth:           &container.MasterAuth{ClusterCaCertificate: base64.StdEncoding.EncodeToString(ca)},
	})
}

// selector is a parsed field selector: requirements ANDed (commas), each = / == / !=.
type selector []struct {
	field, value string
	not          bool
}

func parseSelector(s string) (selector, error) {
	var out selector
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		var f, v string
		not := false
		switch {
		case strings.Contains(part, "!="):
			f, v, _ = strings.Cut(part, "!=")
			not = true
		case strings.Contains(part, "=="):
			f, v, _ = strings.Cut(part, "==")
		case strings.Contains(part, "="):
			f, v, _ = strings.Cut(part, "=")
		default:
			return nil, fmt.Errorf("invalid selector: %q", part)
		}
		switch f {
		case "status.phase", "metadata.name", "metadata.namespace":
		default:
			return nil, fmt.Errorf(`field label not supported: %s`, f)
		}
		out = append(out, struct {
			field, value string
			not          bool
		}{f, v, not})
	}
	return out, nil
}

func (sel selector) matches(p corev1.Pod) bool {
	for _, r := range sel {
		var got string
		switch r.field {
		case "status.phase":
			got = string(p.Status.Phase)
		case "metadata.name":
			got = p.Name
		case "metadata.namespace":
			got = p.Namespace
		}
		if (got == r.value) == r.not {
			return false
		}
	}
	return true
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request, c Cluster) bool {
	if c.Token == "" || r.Header.Get("Authorization") == "Bearer "+c.Token {
		return true
	}
	writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized", "")
	return false
}

// gkeUser is how GKE names the caller in its RBAC answers.
const gkeUser = "fediops-backupaudit@fediops-healthy.iam.gserviceaccount.com"

func (s *Server) listPods(w http.ResponseWriter, r *http.Request, cluster, ns string) {
	s.mu.Lock()
	c, _, ok := s.findCluster(cluster)
	s.mu.Unlock()
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", "cluster gone", "")
		return
	}
	if !s.authorized(w, r, c) {
		return
	}
	for _, f := range c.ForbiddenList {
		if f == "*" || f == ns {
			where := fmt.Sprintf("in the namespace %q", ns)
			if ns == "" {
				where = "at the cluster scope"
			}
			writeStatus(w, http.StatusForbidden, "Forbidden",
				fmt.Sprintf(`pods is forbidden: User "%s" cannot list resource "pods" in API group "" %s: requires one of ["container.pods.list"] permission(s).`, gkeUser, where), "pods")
			return
		}
	}
	q := r.URL.Query()
	sel, err := parseSelector(q.Get("fieldSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error(), "")
		return
	}
	var match []corev1.Pod
	for _, p := range c.Pods {
		if (ns == "" || p.Namespace == ns) && sel.matches(p) {
			match = append(match, p)
		}
	}
	sort.SliceStable(match, func(i, j int) bool {
		if match[i].Namespace != match[j].Namespace {
			return match[i].Namespace < match[j].Namespace
		}
		return match[i].Name < match[j].Name
	})
	size := c.PageSize
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && (size == 0 || l < size) {
		size = l
	}
	page, next, ok := paginate(len(match), size, q.Get("continue"))
	if !ok {
		writeStatus(w, http.StatusGone, "Expired", "The provided continue parameter is too old to display a consistent list result.", "")
		return
	}
	list := corev1.PodList{
		TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: "123456", Continue: next},
		Items:    match[page[0]:page[1]],
	}
	writeJSON(w, &list)
}

func (s *Server) deletePod(w http.ResponseWriter, r *http.Request, cluster, ns, name string) {
	var opts metav1.DeleteOptions
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&opts); err != nil {
			writeStatus(w, http.StatusBadRequest, "BadRequest", "invalid DeleteOptions: "+err.Error(), "")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ci, ok := s.findCluster(cluster)
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", "cluster gone", "")
		return
	}
	if !s.authorized(w, r, c) {
		return
	}
	if c.ForbiddenDelete {
		writeStatus(w, http.StatusForbidden, "Forbidden",
			fmt.Sprintf(`pods "%s" is forbidden: User "%s" cannot delete resource "pods" in API group "" in the namespace "%s": requires one of ["container.pods.delete"] permission(s).`, name, gkeUser, ns), "pods")
		return
	}
	for i, p := range c.Pods {
		if p.Namespace != ns || p.Name != name {
			continue
		}
		if pc := opts.Preconditions; pc != nil {
			if (pc.UID != nil && *pc.UID != p.UID) || (pc.ResourceVersion != nil && *pc.ResourceVersion != p.ResourceVersion) {
				writeStatus(w, http.StatusConflict, "Conflict",
					fmt.Sprintf(`Operation cannot be fulfilled on pods "%s": the object has been modified; please apply your changes to the latest version and try again`, name), "pods")
				return
			}
		}
		c.Pods = append(append([]corev1.Pod(nil), c.Pods[:i]...), c.Pods[i+1:]...)
		s.env.Clusters[ci] = c
		p.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
		writeJSON(w, &p)
		return
	}
	writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf(`pods "%s" not found`, name), "pods")
}

// writeStatus writes a Kubernetes Status failure, as the API server does.
func writeStatus(w http.ResponseWriter, code int, reason, msg, kind string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: msg, Reason: metav1.StatusReason(reason), Code: int32(code),
	}
	if kind != "" {
		st.Details = &metav1.StatusDetails{Kind: kind}
	}
	b, _ := json.Marshal(&st)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// Pod returns a pod shaped like the API's: in namespace ns, created at created, in phase
// (Running, Succeeded, Failed...), owned by a Job when job is set; finished pods have a
// terminated container that ended at created+run.
func Pod(ns, name string, phase corev1.PodPhase, created time.Time, run time.Duration, job string) corev1.Pod {
	p := corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			UID:               types.UID(fmt.Sprintf("%x-%s", created.Unix(), name)),
			ResourceVersion:   strconv.FormatInt(created.Unix()%1000000, 10),
			CreationTimestamp: metav1.NewTime(created.UTC().Truncate(time.Second)),
		},
		Status: corev1.PodStatus{Phase: phase, StartTime: ptr(metav1.NewTime(created.UTC().Truncate(time.Second)))},
	}
	if job != "" {
		yes := true
		p.Labels = map[string]string{"batch.kubernetes.io/job-name": job}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job, UID: types.UID("job-" + job), Controller: &yes}}
	}
	switch phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		code := int32(0)
		reason := "Completed"
		if phase == corev1.PodFailed {
			code, reason = 1, "Error"
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "main", Image: "ghcr.io/mastodon/mastodon:v4.4.3",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: code, Reason: reason,
				StartedAt:  metav1.NewTime(created.UTC().Truncate(time.Second)),
				FinishedAt: metav1.NewTime(created.Add(run).UTC().Truncate(time.Second)),
			}},
		}}
	case corev1.PodRunning:
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "main", Image: "ghcr.io/mastodon/mastodon:v4.4.3", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(created.UTC().Truncate(time.Second))}},
		}}
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// EvictedPod returns a Failed pod evicted by the kubelet (status.reason Evicted).
func EvictedPod(ns, name string, created time.Time) corev1.Pod {
	p := Pod(ns, name, corev1.PodFailed, created, 0, "")
	p.Status.Reason = "Evicted"
	p.Status.Message = "The node was low on resource: memory."
	p.Status.ContainerStatuses = nil
	return p
}
