// Package kube lists and deletes finished pods in a GKE cluster through the Kubernetes API
// (k8s.io/client-go), with the caller's own Google credentials: the cluster's endpoint and CA
// come from the GKE API (gcpbackup.Client.Cluster), the bearer token is a Google OAuth2
// access token, as GKE expects.
//
// It returns small plain structs (Pod) and errors of type *Error, which say whether the
// caller lacks a permission (and which one the server named), so that callers can explain a
// failure without knowing client-go.
package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Finished phases: a pod in one of them runs no container any more and never will again
// (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/).
const (
	PhaseFailed    = string(corev1.PodFailed)
	PhaseSucceeded = string(corev1.PodSucceeded)
)

// Config says how to reach one cluster.
type Config struct {
	// Endpoint is the control plane's address as the GKE API gives it (an IP, or host:port).
	Endpoint string
	// CACert is the cluster's CA certificate (PEM); it is the only CA trusted.
	CACert []byte
	// TokenSource gives the bearer token (Google access tokens, scope cloud-platform); nil
	// sends none (test clusters reached through a loopback GKE API fake).
	TokenSource oauth2.TokenSource
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
}

// Client talks to one cluster.
type Client struct {
	cs       kubernetes.Interface
	endpoint string
}

// New returns a Client for cfg. It does no I/O.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("kube: no cluster endpoint")
	}
	if len(cfg.CACert) == 0 {
		return nil, errors.New("kube: no cluster CA certificate")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	host := cfg.Endpoint
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	rc := &rest.Config{
		Host:            host,
		TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CACert},
		Timeout:         cfg.Timeout,
		UserAgent:       "fediops-backupaudit",
		// JSON both ways (client-go would send protobuf bodies): every API server speaks it,
		// and answers stay readable in logs and test fakes.
		ContentConfig: rest.ContentConfig{ContentType: "application/json", AcceptContentTypes: "application/json"},
		QPS:           20,
		Burst:         40,
	}
	if ts := cfg.TokenSource; ts != nil {
		rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return &oauth2.Transport{Source: ts, Base: rt}
		}
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kube: client for %s: %w", cfg.Endpoint, err)
	}
	return &Client{cs: cs, endpoint: cfg.Endpoint}, nil
}

// Pod is a finished pod.
type Pod struct {
	Namespace       string
	Name            string
	UID             string
	ResourceVersion string
	Phase           string // Failed or Succeeded
	Reason          string // status.reason, e.g. "Evicted"
	Created         time.Time
	// Finished is when its last container terminated (creation time when unknown).
	Finished time.Time
	// Owner is the controlling owner, "Job/mastodon-db-migrate-1", or "".
	Owner string
}

// Age is how long ago the pod finished.
func (p Pod) Age(now time.Time) time.Duration { return now.Sub(p.Finished) }

// pageSize is the limit asked for per page of pods.
const pageSize = 500

// maxPages bounds a listing.
const maxPages = 100

// FinishedPods lists the pods in namespace ("" for every namespace) whose status.phase is
// one of phases (PhaseFailed, PhaseSucceeded), one field-selected listing per phase, all
// pages; sorted by namespace, then oldest first.
func (c *Client) FinishedPods(ctx context.Context, namespace string, phases ...string) ([]Pod, error) {
	var out []Pod
	for _, phase := range phases {
		cont := ""
		for page := 0; ; page++ {
			if page >= maxPages {
				return nil, &Error{Op: "list pods", Namespace: namespace, Message: fmt.Sprintf("the listing did not end after %d pages", maxPages)}
			}
			list, err := c.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
				FieldSelector: "status.phase=" + phase,
				Limit:         pageSize,
				Continue:      cont,
			})
			if err != nil {
				return nil, wrap("list pods", namespace, err)
			}
			for i := range list.Items {
				p := &list.Items[i]
				if string(p.Status.Phase) != phase {
					// The server ignored the field selector: never report (or delete) a pod
					// in another phase.
					continue
				}
				out = append(out, convert(p))
			}
			cont = list.Continue
			if cont == "" {
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Finished.Before(out[j].Finished)
	})
	return out, nil
}

func convert(p *corev1.Pod) Pod {
	out := Pod{
		Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), ResourceVersion: p.ResourceVersion,
		Phase: string(p.Status.Phase), Reason: p.Status.Reason, Created: p.CreationTimestamp.Time,
	}
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.FinishedAt.After(out.Finished) {
			out.Finished = t.FinishedAt.Time
		}
	}
	if out.Finished.IsZero() {
		out.Finished = out.Created
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		out.Owner = ref.Kind + "/" + ref.Name
	}
	return out
}

// DeletePod deletes p, only if it is still the pod that was listed (UID and resourceVersion
// preconditions): a pod that changed since is left alone (an *Error with Conflict).
func (c *Client) DeletePod(ctx context.Context, p Pod) error {
	uid := types.UID(p.UID)
	rv := p.ResourceVersion
	err := c.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
	})
	if err != nil {
		return wrap("delete pod "+p.Name, p.Namespace, err)
	}
	return nil
}

// Error is every error returned by Client methods.
type Error struct {
	Op        string // "list pods", "delete pod NAME"
	Namespace string // "" for the whole cluster
	Code      int    // HTTP status, 0 when there was no answer
	Forbidden bool   // 403: the caller lacks a permission
	NotFound  bool   // 404
	Conflict  bool   // 409: a precondition failed (the object changed)
	// Permission is the permission the server said is missing ("container.pods.list"), when
	// it named one.
	Permission string
	Message    string
	Err        error
}

func (e *Error) Error() string {
	where := "the whole cluster"
	if e.Namespace != "" {
		where = "namespace " + e.Namespace
	}
	s := fmt.Sprintf("kubernetes %s in %s", e.Op, where)
	if e.Code != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// GKE's authorizer names the IAM permission it wanted: `requires one of
// ["container.pods.list"] permission(s)`.
var permissionRe = regexp.MustCompile(`requires one of \["([a-z.]+)"`)

func wrap(op, namespace string, err error) *Error {
	e := &Error{Op: op, Namespace: namespace, Err: err, Message: oneLine(err.Error())}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		e.Code = int(st.Code)
		if st.Message != "" {
			e.Message = oneLine(st.Message)
		}
	}
	e.Forbidden = apierrors.IsForbidden(err)
	e.NotFound = apierrors.IsNotFound(err)
	e.Conflict = apierrors.IsConflict(err)
	if m := permissionRe.FindStringSubmatch(e.Message); m != nil {
		e.Permission = m[1]
	}
	return e
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
