package gcpbackup_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

// TestDrillCalls: clone, operations, patch, delete and the drill-instance listing through the
// real sqladmin client, on the fake's clock.
func TestDrillCalls(t *testing.T) {
	at := now
	s := start(t, backupfake.Healthy(now))
	s.SetClock(func() time.Time { return at })
	c := client(t, s)
	ctx := context.Background()
	p := backupfake.HealthyProject
	clone := "fediops-drill-mastodon-db-202611201200"
	op, err := c.Clone(ctx, p, backupfake.SampleInstance, clone, now.Add(-10*time.Minute))
	if err != nil || op.Type != "CLONE" || op.Done() || op.Target != clone || op.Inserted.IsZero() {
		t.Fatalf("clone: %+v %v", op, err)
	}
	if _, err := c.Clone(ctx, p, backupfake.SampleInstance, clone, time.Time{}); gcpbackup.KindOf(err) != gcpbackup.KindConflict {
		t.Errorf("second clone: %v", err)
	}
	at = now.Add(7 * time.Minute)
	if op, err = c.Operation(ctx, p, op.Name); err != nil || !op.Done() || op.Failed() || op.Ended.Sub(op.Inserted) != 6*time.Minute {
		t.Errorf("operation: %+v %v", op, err)
	}
	inst, err := c.Instance(ctx, p, clone)
	if err != nil || inst.State != "RUNNABLE" || inst.ConnectionName != p+":europe-west1:"+clone || !inst.Created.Equal(now) {
		t.Errorf("clone instance: %+v %v", inst, err)
	}
	if _, err := c.PatchDrillInstance(ctx, p, clone, gcpbackup.DrillPatch{Tier: "db-custom-1-3840", DisableDeletionProtection: true}); err != nil {
		t.Errorf("patch: %v", err)
	}
	if inst, _ := c.Instance(ctx, p, clone); inst.Tier != "db-custom-1-3840" {
		t.Errorf("tier after patch: %s", inst.Tier)
	}
	list, err := c.DrillInstances(ctx, p)
	if err != nil || len(list) != 1 || list[0].Name != clone {
		t.Errorf("drill instances: %+v %v", list, err)
	}
	if _, err := c.DeleteDrillInstance(ctx, p, clone); err != nil {
		t.Fatal(err)
	}
	at = at.Add(2 * time.Minute)
	if _, err := c.Instance(ctx, p, clone); gcpbackup.KindOf(err) != gcpbackup.KindNotFound {
		t.Errorf("after delete: %v", err)
	}
	if _, err := c.DeleteDrillInstance(ctx, p, clone); gcpbackup.KindOf(err) != gcpbackup.KindNotFound {
		t.Errorf("second delete: %v", err)
	}
	// A failing clone operation says why.
	env := backupfake.Healthy(now)
	env.SQL[0].Drill.CloneError = "not enough logs"
	s.SetEnv(env)
	op, _ = c.Clone(ctx, p, backupfake.SampleInstance, "fediops-drill-mastodon-db-202611201300", time.Time{})
	at = at.Add(time.Hour)
	if op, err = c.Operation(ctx, p, op.Name); err != nil || !op.Failed() || !strings.Contains(op.Error, "INTERNAL_ERROR: not enough logs") {
		t.Errorf("failed operation: %+v %v", op, err)
	}
}

func TestClusterAnswers(t *testing.T) {
	s := start(t, backupfake.Healthy(now))
	c := gcpbackup.New(gcpbackup.Config{ContainerEndpoint: s.Container.URL, Attempts: 1, Timeout: time.Second})
	defer c.Close()
	name := backupfake.ClusterName(backupfake.HealthyProject, backupfake.SampleLocation, backupfake.SampleCluster)
	cl, err := c.Cluster(context.Background(), name)
	if err != nil || !strings.HasPrefix(cl.Endpoint, "127.0.0.1:") || len(cl.CACert) == 0 {
		t.Errorf("cluster: %+v %v", cl, err)
	}
	if !c.ContainerUnauthenticated() {
		t.Error("a loopback http endpoint is unauthenticated")
	}
	if _, err := c.Cluster(context.Background(), name+"x"); gcpbackup.KindOf(err) != gcpbackup.KindNotFound {
		t.Errorf("unknown cluster: %v", err)
	}
}
