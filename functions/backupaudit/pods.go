package backupaudit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/kube"
)

// Pods lists and deletes finished pods in GKE clusters (implemented over the GKE API and the
// clusters' Kubernetes API by SourcesFrom). cluster is projects/P/locations/L/clusters/C;
// namespace "" means every namespace.
type Pods interface {
	FinishedPods(ctx context.Context, cluster, namespace string, phases ...string) ([]kube.Pod, error)
	DeletePod(ctx context.Context, cluster string, p kube.Pod) error
}

// PodCleanup is the optional removal of leftover pods for one plan
// (delete_leftover_pods_older_than, include_succeeded).
type PodCleanup struct {
	// OlderThan deletes Failed pods that finished longer ago than this; 0 deletes nothing.
	OlderThan time.Duration
	// IncludeSucceeded deletes Succeeded pods too.
	IncludeSucceeded bool
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
}

// MaxPodDeletions caps the pods one audit deletes per plan: a guard against a surprise (a
// scope wider than thought); the rest waits for the next audit and is reported.
const MaxPodDeletions = 100

// Roles for the leftover-pods check.
const (
	// RoleContainerViewer reads clusters (container.clusters.get) and the pods in them
	// (container.pods.list).
	RoleContainerViewer = "roles/container.viewer"
	// PermissionPodsDelete is the one permission the optional cleanup adds (infra: the
	// fediopsPodCleanup custom role, see docs/deployment.md).
	PermissionPodsDelete = "container.pods.delete"
)

func clusterResource(t GKETarget, cluster string) resource {
	return resource{
		api:  gcpbackup.APIContainer,
		what: "cluster " + cluster,
		role: RoleContainerViewer,
		grant: fmt.Sprintf("grant %s on the project: gcloud projects add-iam-policy-binding %s --member=%s --role=%s",
			RoleContainerViewer, clusterProject(cluster, t.Project), saPlaceholder, RoleContainerViewer),
		notFound: fmt.Sprintf("the plan's cluster is gone or renamed; list the clusters with: gcloud container clusters list --project=%s", clusterProject(cluster, t.Project)),
	}
}

// clusterProject returns the project of a cluster resource name (def if it names none).
func clusterProject(cluster, def string) string {
	parts := strings.Split(cluster, "/")
	if len(parts) >= 2 && parts[0] == "projects" && parts[1] != "" {
		return parts[1]
	}
	return def
}

// gkeRPORisk reports what the service itself says about the plan's RPO.
func gkeRPORisk(t GKETarget, p gcpbackup.GKEPlan, th Thresholds) Check {
	c := Check{ID: GKERPORisk, Target: t.String(), Expected: expectation(GKERPORisk, th)}
	reason := strings.TrimSpace(p.RPORiskReason)
	switch {
	case p.RPORiskLevel == 0:
		c.Status, c.Observed = Pass, "the service reports no RPO risk level for this plan"
	case p.RPORiskLevel <= 1:
		c.Status, c.Observed = Pass, "risk level 1 of 5 (no risk)"
	default:
		c.Status = Warn
		c.Observed = fmt.Sprintf("risk level %d of 5", p.RPORiskLevel)
		if reason != "" {
			c.Observed += ": " + reason
		}
		c.Hint = "Backup for GKE says the plan may miss its recovery point: follow its reason above; see the plan with: " +
			fmt.Sprintf("gcloud beta container backup-restore backup-plans describe %s --project=%s --location=%s", t.Plan, t.Project, t.Location)
	}
	return c
}

// leftoverGroup counts finished pods of one namespace and phase.
type leftoverGroup struct {
	ns, phase string
	n         int
}

// gkeLeftoverPods lists the Failed and Succeeded pods in the plan's namespaces and, when the
// plan's cleanup says so, deletes the old ones (never a pod in another phase, never outside
// the plan's namespaces).
func gkeLeftoverPods(ctx context.Context, src Pods, t GKETarget, p gcpbackup.GKEPlan, now time.Time, th Thresholds) Check {
	c := Check{ID: GKELeftoverPods, Target: t.String(), Expected: expectation(GKELeftoverPods, th)}
	if src == nil {
		return missingSource([]string{GKELeftoverPods}, t.String(), "Kubernetes")[0]
	}
	if p.Cluster == "" {
		c.Status, c.Observed = Fail, "the plan names no cluster"
		c.Hint = fmt.Sprintf("see the plan: gcloud beta container backup-restore backup-plans describe %s --project=%s --location=%s", t.Plan, t.Project, t.Location)
		return c
	}
	namespaces := p.Scope.Namespaces
	scope := "namespaces " + strings.Join(namespaces, ", ")
	if p.Scope.AllNamespaces {
		namespaces, scope = []string{""}, "all namespaces"
	}
	if len(namespaces) == 0 {
		c.Status, c.Observed = Pass, "the plan's scope names no namespace"
		return c
	}
	var pods []kube.Pod
	for _, ns := range namespaces {
		found, err := src.FinishedPods(ctx, p.Cluster, ns, kube.PhaseFailed, kube.PhaseSucceeded)
		if err != nil {
			c.Status = Fail
			c.Observed, c.Hint = explainPods(t, p.Cluster, ns, err)
			return c
		}
		for _, pod := range found {
			if (ns == "" || pod.Namespace == ns) && pod.Age(now) >= th.LeftoverPodsMinAge {
				pods = append(pods, pod)
			}
		}
	}
	deleted, cleanupNote, cleanupFail := cleanupPods(ctx, src, t, p.Cluster, namespaces, pods, now)
	var left []kube.Pod
	for _, pod := range pods {
		if !deleted[pod.Namespace+"/"+pod.Name] {
			left = append(left, pod)
		}
	}
	protected := ""
	if p.ProtectedPodCount > 0 {
		protected = fmt.Sprintf("; the last backup protected %s", plural(int(p.ProtectedPodCount), "pod"))
	}
	if len(left) == 0 {
		c.Status = Pass
		c.Observed = "no Failed or Succeeded pods in " + scope + protected
		if cleanupNote != "" {
			c.Observed = cleanupNote + "; " + c.Observed
		}
		if cleanupFail != "" {
			c.Status, c.Observed, c.Hint = Fail, c.Observed+"; "+cleanupFail, cleanupHint(t)
		}
		return c
	}
	c.Status = Warn
	c.Observed = describeLeftovers(left, now) + " in " + scope + protected
	if cleanupNote != "" {
		c.Observed += "; " + cleanupNote
	}
	c.Hint = leftoverHint(left, t)
	if cleanupFail != "" {
		c.Status = Fail
		c.Observed += "; " + cleanupFail
		c.Hint = cleanupHint(t) + "; or by hand: " + c.Hint
	}
	return c
}

func describeLeftovers(pods []kube.Pod, now time.Time) string {
	var groups []leftoverGroup
	idx := map[string]int{}
	oldest := pods[0]
	for _, p := range pods {
		k := p.Namespace + "\x00" + p.Phase
		if i, ok := idx[k]; ok {
			groups[i].n++
		} else {
			idx[k] = len(groups)
			groups = append(groups, leftoverGroup{p.Namespace, p.Phase, 1})
		}
		if p.Finished.Before(oldest.Finished) {
			oldest = p
		}
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].ns != groups[j].ns {
			return groups[i].ns < groups[j].ns
		}
		return groups[i].phase < groups[j].phase
	})
	var parts []string
	for _, g := range groups {
		parts = append(parts, fmt.Sprintf("%s: %d %s", g.ns, g.n, g.phase))
	}
	o := oldest.Namespace + "/" + oldest.Name
	if oldest.Reason != "" {
		o += " (" + oldest.Reason + ")"
	}
	return fmt.Sprintf("%s (%s); oldest %s %s, finished %s ago",
		plural(len(pods), "finished pod"), strings.Join(parts, ", "), oldest.Phase, o, age(oldest.Age(now)))
}

// leftoverHint is the ops guide's own cleanup command for each namespace and phase left.
func leftoverHint(pods []kube.Pod, t GKETarget) string {
	seen := map[string]bool{}
	var cmds []string
	for _, p := range pods {
		k := p.Namespace + "/" + p.Phase
		if seen[k] {
			continue
		}
		seen[k] = true
		cmds = append(cmds, fmt.Sprintf("kubectl delete pods --field-selector status.phase=%s -n %s", p.Phase, p.Namespace))
	}
	sort.Strings(cmds)
	if t.Cleanup.OlderThan == 0 {
		return "finished pods are backed up and restored too, and inflate the backups: delete them with " + strings.Join(cmds, "; ") +
			`; or let the audit delete old ones: delete_leftover_pods_older_than = "72h" in this [[backup.gke]] entry; and limit Job leftovers (ttlSecondsAfterFinished, successfulJobsHistoryLimit, failedJobsHistoryLimit)`
	}
	return "finished pods are backed up and restored too: delete them with " + strings.Join(cmds, "; ") +
		"; and limit Job leftovers (ttlSecondsAfterFinished, successfulJobsHistoryLimit, failedJobsHistoryLimit)"
}

func cleanupHint(t GKETarget) string {
	return fmt.Sprintf("the cleanup needs %s on the cluster: set leftover_pod_cleanup = true in infra/terraform.tfvars and apply (it grants the fediopsPodCleanup role), or bind a namespaced Kubernetes Role allowing delete on pods to the audit's service account (docs/deployment.md); or remove delete_leftover_pods_older_than from [[backup.gke]] plan %s",
		PermissionPodsDelete, t.Plan)
}

// cleanupPods deletes (or, in a dry run, lists) the pods the plan's cleanup allows. It returns
// the deleted pods ("ns/name"), a note for the check and, when deleting failed, why.
func cleanupPods(ctx context.Context, src Pods, t GKETarget, cluster string, namespaces []string, pods []kube.Pod, now time.Time) (map[string]bool, string, string) {
	deleted := map[string]bool{}
	cl := t.Cleanup
	if cl.OlderThan <= 0 {
		return deleted, "", ""
	}
	var victims []kube.Pod
	for _, p := range pods {
		if deletable(p, cl, namespaces, now) {
			victims = append(victims, p)
		}
	}
	kinds := "Failed"
	if cl.IncludeSucceeded {
		kinds = "Failed and Succeeded"
	}
	if len(victims) == 0 {
		return deleted, fmt.Sprintf("cleanup: no %s pod older than %s", kinds, limit(cl.OlderThan)), ""
	}
	capped := ""
	if len(victims) > MaxPodDeletions {
		capped = fmt.Sprintf(" (at most %d per audit; the next audit continues)", MaxPodDeletions)
		victims = victims[:MaxPodDeletions]
	}
	if cl.DryRun {
		names := make([]string, 0, 3)
		for i, v := range victims {
			if i == 3 {
				names = append(names, "…")
				break
			}
			names = append(names, v.Namespace+"/"+v.Name)
		}
		return deleted, fmt.Sprintf("dry run: would delete %s older than %s%s (%s)",
			plural(len(victims), kinds+" pod"), limit(cl.OlderThan), capped, strings.Join(names, ", ")), ""
	}
	n, changed := 0, 0
	for _, v := range victims {
		err := src.DeletePod(ctx, cluster, v)
		var ke *kube.Error
		switch {
		case err == nil:
			deleted[v.Namespace+"/"+v.Name] = true
			n++
		case errors.As(err, &ke) && (ke.NotFound || ke.Conflict):
			// Gone already, or changed since it was listed: left alone.
			if ke.NotFound {
				deleted[v.Namespace+"/"+v.Name] = true
			}
			changed++
		default:
			note := fmt.Sprintf("cleanup: deleted %d of %s older than %s", n, plural(len(victims), kinds+" pod"), limit(cl.OlderThan))
			why := "deleting failed: " + err.Error()
			if errors.As(err, &ke) && ke.Forbidden {
				why = fmt.Sprintf("deleting pods is forbidden (HTTP 403): the audit's service account lacks %s", PermissionPodsDelete)
			}
			return deleted, note, why
		}
	}
	note := fmt.Sprintf("cleanup: deleted %s older than %s%s", plural(n, kinds+" pod"), limit(cl.OlderThan), capped)
	if changed > 0 {
		note += fmt.Sprintf(", %d changed or gone since listed and left alone", changed)
	}
	return deleted, note, ""
}

// deletable is the cleanup's whole rule, checked again for every pod right before it is
// deleted: a finished phase the cleanup covers (never Running, Pending or Unknown), in one of
// the plan's namespaces, finished longer ago than the configured age.
func deletable(p kube.Pod, cl PodCleanup, namespaces []string, now time.Time) bool {
	switch p.Phase {
	case kube.PhaseFailed:
	case kube.PhaseSucceeded:
		if !cl.IncludeSucceeded {
			return false
		}
	default:
		return false
	}
	if p.Namespace == "" || (!slices.Contains(namespaces, "") && !slices.Contains(namespaces, p.Namespace)) {
		return false
	}
	return cl.OlderThan > 0 && p.Age(now) > cl.OlderThan
}

// explainPods turns a failure to list pods into the observed text and the hint.
func explainPods(t GKETarget, cluster, ns string, err error) (string, string) {
	var ke *kube.Error
	if errors.As(err, &ke) {
		where := "namespace " + ns
		if ns == "" {
			where = "the whole cluster"
		}
		switch {
		case ke.Forbidden:
			perm := orDefault(ke.Permission, "container.pods.list")
			return fmt.Sprintf("permission denied (HTTP 403) listing pods in %s of %s: the audit's service account lacks %s (it needs %s; %s)",
					where, cluster, RoleContainerViewer, perm, ke.Message),
				clusterResource(t, cluster).grant
		case ke.Code == 401:
			return fmt.Sprintf("credentials refused (HTTP 401) by the Kubernetes API of %s: %s", cluster, ke.Message),
				"check the credentials of the audit's service account (Application Default Credentials; locally: gcloud auth application-default login)"
		}
		return fmt.Sprintf("could not list pods in %s of %s: %s", where, cluster, ke.Error()),
			"re-run the audit; if it persists, check that the function can reach the cluster's control plane (authorized networks, private endpoint)"
	}
	return explain(clusterResource(t, cluster), err)
}
