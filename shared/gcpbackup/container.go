package gcpbackup

import (
	"context"
	"encoding/base64"
	"strings"

	container "google.golang.org/api/container/v1"
)

// Cluster is what the leftover-pods check needs of a GKE cluster (clusters.get): where its
// control plane answers and the CA that signs its certificate.
type Cluster struct {
	Name     string // projects/P/locations/L/clusters/C
	Status   string // RUNNING, RECONCILING, ...
	Endpoint string // the control plane's IP address (host[:port])
	// CACert is the cluster's root CA certificate (PEM), decoded from
	// masterAuth.clusterCaCertificate: the only CA trusted for Endpoint.
	CACert []byte
}

// Cluster reads a GKE cluster (clusters.get). name is projects/P/locations/L/clusters/C, as
// a backup plan's cluster field gives it.
func (c *Client) Cluster(ctx context.Context, name string) (Cluster, error) {
	const op = "clusters.get"
	svc, err := c.containerService(ctx)
	if err != nil {
		return Cluster{}, setupError(APIContainer, op, name, err)
	}
	var cl *container.Cluster
	err = c.do(ctx, APIContainer, op, name, func(ctx context.Context) error {
		var err error
		cl, err = svc.Projects.Locations.Clusters.Get(name).Context(ctx).Do()
		return err
	})
	if err != nil {
		return Cluster{}, err
	}
	out := Cluster{Name: name}
	if cl == nil {
		return out, classify(APIContainer, op, name, &malformedError{"empty cluster"})
	}
	out.Status = cl.Status
	out.Endpoint = strings.TrimSpace(cl.Endpoint)
	if cl.MasterAuth != nil && cl.MasterAuth.ClusterCaCertificate != "" {
		ca, err := base64.StdEncoding.DecodeString(cl.MasterAuth.ClusterCaCertificate)
		if err != nil {
			return out, classify(APIContainer, op, name, &malformedError{"masterAuth.clusterCaCertificate is not base64: " + err.Error()})
		}
		out.CACert = ca
	}
	if out.Endpoint == "" {
		return out, classify(APIContainer, op, name, &malformedError{"the cluster has no endpoint (is it still being created?)"})
	}
	if len(out.CACert) == 0 {
		return out, classify(APIContainer, op, name, &malformedError{"the cluster has no CA certificate (masterAuth.clusterCaCertificate)"})
	}
	return out, nil
}
