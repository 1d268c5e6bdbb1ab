package gcpbackup

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	sqladmin "google.golang.org/api/sqladmin/v1"
)

// DrillPrefix starts the name of every Cloud SQL instance the restore drill creates. It is
// the only kind of instance this package ever changes: Clone, PatchDrillInstance and
// DeleteDrillInstance refuse any other name before sending anything, and the Terraform grant
// of cloudsql.instances.delete carries an IAM condition on the same prefix.
const DrillPrefix = "fediops-drill-"

// IsDrillInstance reports whether name is a drill clone's name (DrillPrefix and something
// after it).
func IsDrillInstance(name string) bool {
	return strings.HasPrefix(name, DrillPrefix) && len(name) > len(DrillPrefix)
}

// refuse returns the error of a request this package will not send.
func refuse(op, project, name string) *Error {
	return &Error{
		API: APISQLAdmin, Op: op, Resource: sqlResource(project, name), Kind: KindRefused,
		Message: fmt.Sprintf("refusing to change instance %q: only instances named %s* are ever changed or deleted", name, DrillPrefix),
	}
}

// SQLOperation is a Cloud SQL Admin long-running operation (operations.get).
type SQLOperation struct {
	Name     string // the operation's id, for operations.get
	Type     string // CLONE, DELETE, UPDATE...
	Status   string // PENDING, RUNNING, DONE
	Target   string // targetId: the instance it works on
	Inserted time.Time
	Started  time.Time
	Ended    time.Time
	// Error is the operation's error (error.errors[], "code: message; ..."), set when a DONE
	// operation failed.
	Error string
}

// Done reports whether the operation finished (successfully or not).
func (o SQLOperation) Done() bool { return o.Status == "DONE" }

// Failed reports whether the operation finished with an error.
func (o SQLOperation) Failed() bool { return o.Done() && o.Error != "" }

func convertOperation(op *sqladmin.Operation) (SQLOperation, error) {
	out := SQLOperation{}
	if op == nil {
		return out, &malformedError{"empty operation"}
	}
	out.Name, out.Type, out.Status, out.Target = op.Name, op.OperationType, op.Status, op.TargetId
	var err error
	if out.Inserted, err = parseTime("insertTime", op.InsertTime); err != nil {
		return out, err
	}
	if out.Started, err = parseTime("startTime", op.StartTime); err != nil {
		return out, err
	}
	if out.Ended, err = parseTime("endTime", op.EndTime); err != nil {
		return out, err
	}
	if op.Error != nil {
		var parts []string
		for _, e := range op.Error.Errors {
			if e == nil {
				continue
			}
			parts = append(parts, strings.Trim(e.Code+": "+e.Message, ": "))
		}
		out.Error = strings.Join(parts, "; ")
		if out.Error == "" {
			out.Error = "the operation failed without saying why"
		}
	}
	if out.Name == "" {
		return out, &malformedError{"operation without a name"}
	}
	return out, nil
}

// Clone starts cloning source into dest as it was at pointInTime (instances.clone with
// cloneContext.pointInTime; the zero time clones the current state). dest must be a drill
// instance name. The clone is a request on the source that changes nothing in it: the source
// keeps running and its data is read, not written.
func (c *Client) Clone(ctx context.Context, project, source, dest string, pointInTime time.Time) (SQLOperation, error) {
	const op = "instances.clone"
	res := sqlResource(project, source)
	if !IsDrillInstance(dest) {
		return SQLOperation{}, refuse(op, project, dest)
	}
	if IsDrillInstance(source) {
		return SQLOperation{}, &Error{API: APISQLAdmin, Op: op, Resource: res, Kind: KindRefused,
			Message: "refusing to clone a drill clone"}
	}
	cc := &sqladmin.CloneContext{Kind: "sql#cloneContext", DestinationInstanceName: dest}
	if !pointInTime.IsZero() {
		cc.PointInTime = pointInTime.UTC().Format(time.RFC3339Nano)
	}
	return c.sqlOperation(ctx, op, res, func(ctx context.Context, svc *sqladmin.Service) (*sqladmin.Operation, error) {
		return svc.Instances.Clone(project, source, &sqladmin.InstancesCloneRequest{CloneContext: cc}).Context(ctx).Do()
	})
}

// Operation reads an operation (operations.get).
func (c *Client) Operation(ctx context.Context, project, name string) (SQLOperation, error) {
	const op = "operations.get"
	res := "projects/" + project + "/operations/" + name
	return c.sqlOperation(ctx, op, res, func(ctx context.Context, svc *sqladmin.Service) (*sqladmin.Operation, error) {
		return svc.Operations.Get(project, name).Context(ctx).Do()
	})
}

// DrillPatch is what PatchDrillInstance changes on a clone.
type DrillPatch struct {
	Tier                      string // settings.tier; "" keeps it
	DisableDeletionProtection bool   // settings.deletionProtectionEnabled = false
}

// PatchDrillInstance changes a drill clone's settings (instances.patch). It refuses any name
// outside DrillPrefix.
func (c *Client) PatchDrillInstance(ctx context.Context, project, name string, p DrillPatch) (SQLOperation, error) {
	const op = "instances.patch"
	if !IsDrillInstance(name) {
		return SQLOperation{}, refuse(op, project, name)
	}
	res := sqlResource(project, name)
	settings := &sqladmin.Settings{Tier: p.Tier}
	if p.DisableDeletionProtection {
		settings.DeletionProtectionEnabled = false
		settings.ForceSendFields = []string{"DeletionProtectionEnabled"}
	}
	return c.sqlOperation(ctx, op, res, func(ctx context.Context, svc *sqladmin.Service) (*sqladmin.Operation, error) {
		return svc.Instances.Patch(project, name, &sqladmin.DatabaseInstance{Settings: settings}).Context(ctx).Do()
	})
}

// DeleteDrillInstance deletes a drill clone (instances.delete, no final backup). It refuses
// any name outside DrillPrefix: this is the only delete request fediops ever sends to Cloud
// SQL.
func (c *Client) DeleteDrillInstance(ctx context.Context, project, name string) (SQLOperation, error) {
	const op = "instances.delete"
	if !IsDrillInstance(name) {
		return SQLOperation{}, refuse(op, project, name)
	}
	res := sqlResource(project, name)
	return c.sqlOperation(ctx, op, res, func(ctx context.Context, svc *sqladmin.Service) (*sqladmin.Operation, error) {
		return svc.Instances.Delete(project, name).Context(ctx).Do()
	})
}

// sqlOperation sends one Cloud SQL Admin request that answers an operation (clone, patch,
// delete, operations.get) through c.do's retries and classification.
func (c *Client) sqlOperation(ctx context.Context, op, res string, call func(context.Context, *sqladmin.Service) (*sqladmin.Operation, error)) (SQLOperation, error) {
	svc, err := c.sqlService(ctx)
	if err != nil {
		return SQLOperation{}, setupError(APISQLAdmin, op, res, err)
	}
	var o *sqladmin.Operation
	err = c.do(ctx, APISQLAdmin, op, res, func(ctx context.Context) (err error) {
		o, err = call(ctx, svc)
		return err
	})
	if err != nil {
		return SQLOperation{}, err
	}
	out, err := convertOperation(o)
	if err != nil {
		return out, classify(APISQLAdmin, op, res, err)
	}
	return out, nil
}

// instancesPageSize is the maxResults asked for per page of instances.list.
const instancesPageSize = 100

// DrillInstances lists the project's instances whose name starts with DrillPrefix
// (instances.list, all pages, filtered here), oldest first.
func (c *Client) DrillInstances(ctx context.Context, project string) ([]SQLInstance, error) {
	const op = "instances.list"
	res := "projects/" + project + "/instances"
	svc, err := c.sqlService(ctx)
	if err != nil {
		return nil, setupError(APISQLAdmin, op, res, err)
	}
	var out []SQLInstance
	err = listPages(ctx, c, APISQLAdmin, op, res, func(ctx context.Context, token string) (*sqladmin.InstancesListResponse, error) {
		call := svc.Instances.List(project).MaxResults(instancesPageSize).Context(ctx)
		if token != "" {
			call = call.PageToken(token)
		}
		return call.Do()
	}, func(page *sqladmin.InstancesListResponse) (string, error) {
		if page == nil {
			return "", nil
		}
		for _, di := range page.Items {
			if di == nil || !IsDrillInstance(di.Name) {
				continue
			}
			inst, err := convertInstance(project, di.Name, di)
			if err != nil {
				return "", err
			}
			out = append(out, inst)
		}
		return page.NextPageToken, nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}
