package backupaudit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/kube"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

// cleanupEnv is the healthy environment with pods of every kind around the plan's namespace.
func cleanupEnv() backupfake.Env {
	env := backupfake.Healthy(now)
	c := &env.Clusters[0]
	c.Pods = append(c.Pods,
		backupfake.Pod("mastodon", "old-failed-1", corev1.PodFailed, now.Add(-100*time.Hour), time.Minute, "mastodon-db-migrate-1"),
		backupfake.EvictedPod("mastodon", "old-evicted-2", now.Add(-200*time.Hour)),
		backupfake.Pod("mastodon", "young-failed-3", corev1.PodFailed, now.Add(-10*time.Hour), time.Minute, "mastodon-db-migrate-3"),
		backupfake.Pod("mastodon", "old-succeeded-4", corev1.PodSucceeded, now.Add(-100*time.Hour), time.Minute, "mastodon-media-remove-4"),
		backupfake.Pod("mastodon", "old-running-5", corev1.PodRunning, now.Add(-300*time.Hour), 0, ""),
		backupfake.Pod("mastodon", "old-pending-6", corev1.PodPending, now.Add(-300*time.Hour), 0, ""),
		backupfake.Pod("elsewhere", "old-failed-7", corev1.PodFailed, now.Add(-300*time.Hour), time.Minute, ""),
	)
	return env
}

// auditCleanup audits env's GKE plan with the given cleanup, through the real clients.
func auditCleanup(t *testing.T, env backupfake.Env, cl backupaudit.PodCleanup, wrap func(backupaudit.Pods) backupaudit.Pods) (backupaudit.Check, *backupfake.Server) {
	t.Helper()
	s := backupfake.Start(env)
	t.Cleanup(s.Close)
	c := gcpbackup.New(gcpbackup.Config{GKEBackupEndpoint: s.GKEBackup.URL, ContainerEndpoint: s.Container.URL, Timeout: 2 * time.Second, Attempts: 1})
	t.Cleanup(func() { _ = c.Close() })
	src := backupaudit.SourcesFrom(c)
	if wrap != nil {
		src.Pods = wrap(src.Pods)
	}
	tg := backupaudit.Targets{GKE: []backupaudit.GKETarget{{Project: backupfake.HealthyProject, Location: backupfake.SampleLocation, Plan: backupfake.SamplePlan, Cleanup: cl}}}
	rep := backupaudit.Audit(context.Background(), clock.NewFake(now), src, tg, backupaudit.Thresholds{})
	ch, ok := rep.Find(backupaudit.GKELeftoverPods, tg.GKE[0].String())
	if !ok {
		t.Fatalf("no leftover check: %+v", rep.Checks)
	}
	return ch, s
}

func podNames(s *backupfake.Server) map[string]bool {
	out := map[string]bool{}
	for _, p := range s.Pods(backupfake.ClusterName(backupfake.HealthyProject, backupfake.SampleLocation, backupfake.SampleCluster)) {
		out[p.Namespace+"/"+p.Name] = true
	}
	return out
}

func TestLeftoverPodsCleanup(t *testing.T) {
	all := podNames(func() *backupfake.Server { s := backupfake.Start(cleanupEnv()); defer s.Close(); return s }())
	for _, tt := range []struct {
		name     string
		cleanup  backupaudit.PodCleanup
		deleted  []string
		status   backupaudit.Status
		observed string
	}{
		{name: "off by default", status: backupaudit.Warn,
			observed: "4 finished pods (mastodon: 3 Failed, mastodon: 1 Succeeded)"},
		{name: "dry run", cleanup: backupaudit.PodCleanup{OlderThan: 72 * time.Hour, DryRun: true}, status: backupaudit.Warn,
			observed: "dry run: would delete 2 Failed pods older than 3d (mastodon/old-evicted-2, mastodon/old-failed-1)"},
		{name: "failed pods older than 72h", cleanup: backupaudit.PodCleanup{OlderThan: 72 * time.Hour}, status: backupaudit.Warn,
			deleted:  []string{"mastodon/old-failed-1", "mastodon/old-evicted-2"},
			observed: "2 finished pods (mastodon: 1 Failed, mastodon: 1 Succeeded)"},
		{name: "with succeeded", cleanup: backupaudit.PodCleanup{OlderThan: 72 * time.Hour, IncludeSucceeded: true}, status: backupaudit.Warn,
			deleted:  []string{"mastodon/old-failed-1", "mastodon/old-evicted-2", "mastodon/old-succeeded-4"},
			observed: "cleanup: deleted 3 Failed and Succeeded pods older than 3d"},
		{name: "everything finished goes", cleanup: backupaudit.PodCleanup{OlderThan: time.Hour, IncludeSucceeded: true}, status: backupaudit.Pass,
			deleted:  []string{"mastodon/old-failed-1", "mastodon/old-evicted-2", "mastodon/old-succeeded-4", "mastodon/young-failed-3"},
			observed: "cleanup: deleted 4 Failed and Succeeded pods older than 1h; no Failed or Succeeded pods in namespaces mastodon"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, s := auditCleanup(t, cleanupEnv(), tt.cleanup, nil)
			if c.Status != tt.status || !strings.Contains(c.Observed, tt.observed) {
				t.Errorf("%s: %s\n  want %s: %s", c.Status, c.Observed, tt.status, tt.observed)
			}
			left := podNames(s)
			gone := map[string]bool{}
			for _, d := range tt.deleted {
				gone[d] = true
			}
			for name := range all {
				if left[name] == gone[name] {
					t.Errorf("%s: still there %v, want deleted %v", name, left[name], gone[name])
				}
			}
			for _, r := range s.Requests() {
				if r.Method == "DELETE" && (strings.Contains(r.Path, "running") || strings.Contains(r.Path, "pending") || strings.Contains(r.Path, "/elsewhere/")) {
					t.Errorf("deleted a pod it must never touch: %s", r.Path)
				}
				if tt.cleanup.DryRun && r.Method != "GET" {
					t.Errorf("dry run sent %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

func TestLeftoverPodsCleanupRefusals(t *testing.T) {
	t.Run("delete forbidden", func(t *testing.T) {
		env := cleanupEnv()
		env.Clusters[0].ForbiddenDelete = true
		c, _ := auditCleanup(t, env, backupaudit.PodCleanup{OlderThan: 72 * time.Hour}, nil)
		if c.Status != backupaudit.Fail || !strings.Contains(c.Observed, "lacks container.pods.delete") ||
			!strings.Contains(c.Hint, "leftover_pod_cleanup = true") {
			t.Errorf("%s: %s\n  hint: %s", c.Status, c.Observed, c.Hint)
		}
	})
	t.Run("a pod changed since it was listed is left alone", func(t *testing.T) {
		env := cleanupEnv()
		c, s := auditCleanup(t, env, backupaudit.PodCleanup{OlderThan: 72 * time.Hour}, func(p backupaudit.Pods) backupaudit.Pods { return staleLister{p} })
		if !strings.Contains(c.Observed, "2 changed or gone since listed and left alone") {
			t.Errorf("%s: %s", c.Status, c.Observed)
		}
		if left := podNames(s); !left["mastodon/old-failed-1"] || !left["mastodon/old-evicted-2"] {
			t.Errorf("changed pods were deleted: %v", left)
		}
	})
	t.Run("at most MaxPodDeletions per audit", func(t *testing.T) {
		env := backupfake.Healthy(now)
		for i := 0; i < backupaudit.MaxPodDeletions+20; i++ {
			env.Clusters[0].Pods = append(env.Clusters[0].Pods, backupfake.EvictedPod("mastodon", "evicted-"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+time.Duration(i).String(), now.Add(-100*time.Hour)))
		}
		env.Clusters[0].PageSize = 7
		c, s := auditCleanup(t, env, backupaudit.PodCleanup{OlderThan: 72 * time.Hour}, nil)
		if !strings.Contains(c.Observed, "cleanup: deleted 100 Failed pods older than 3d (at most 100 per audit") || c.Status != backupaudit.Warn {
			t.Errorf("%s: %s", c.Status, c.Observed)
		}
		if n := len(podNames(s)); n != 6+20 {
			t.Errorf("%d pods left, want the 5 running, the kube-system one and 20 over the cap", n)
		}
	})
}

// staleLister hands out pods with an old resourceVersion, as if they changed after listing.
type staleLister struct{ backupaudit.Pods }

func (s staleLister) FinishedPods(ctx context.Context, cluster, ns string, phases ...string) ([]kube.Pod, error) {
	pods, err := s.Pods.FinishedPods(ctx, cluster, ns, phases...)
	for i := range pods {
		pods[i].ResourceVersion += "0"
	}
	return pods, err
}
