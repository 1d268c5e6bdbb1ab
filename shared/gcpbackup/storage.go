package gcpbackup

import (
	"context"
	"time"

	"cloud.google.com/go/storage"
)

// Bucket is the redundancy and protection configuration of a Cloud Storage bucket.
type Bucket struct {
	Name          string
	Location      string   // e.g. "EU", "EUR4", "EUROPE-WEST1"
	LocationType  string   // "multi-region", "dual-region" or "region"
	DataLocations []string // customPlacementConfig.dataLocations of a configurable dual-region
	RPO           string   // "DEFAULT" or "ASYNC_TURBO"

	Versioning bool // versioning.enabled
	// SoftDelete tells whether a softDeletePolicy was present; SoftDeleteRetention is its
	// retentionDurationSeconds (0 means soft delete is off).
	SoftDelete          bool
	SoftDeleteRetention time.Duration
	// RetentionPeriod is the bucket retention policy (0 when there is none).
	RetentionPeriod time.Duration
	RetentionLocked bool
}

// Bucket reads a bucket's metadata (buckets.get).
func (c *Client) Bucket(ctx context.Context, name string) (Bucket, error) {
	res := "b/" + name
	const op = "buckets.get"
	sc, err := c.storageClient(ctx)
	if err != nil {
		return Bucket{}, setupError(APIStorage, op, res, err)
	}
	var attrs *storage.BucketAttrs
	err = c.do(ctx, APIStorage, op, res, func(ctx context.Context) error {
		var err error
		attrs, err = sc.Bucket(name).Attrs(ctx)
		return err
	})
	if err != nil {
		return Bucket{}, err
	}
	out := Bucket{Name: name}
	if attrs == nil {
		return out, nil
	}
	if attrs.Name != "" {
		out.Name = attrs.Name
	}
	out.Location = attrs.Location
	out.LocationType = attrs.LocationType
	if attrs.CustomPlacementConfig != nil {
		out.DataLocations = append([]string(nil), attrs.CustomPlacementConfig.DataLocations...)
	}
	out.RPO = attrs.RPO.String()
	out.Versioning = attrs.VersioningEnabled
	if sd := attrs.SoftDeletePolicy; sd != nil {
		out.SoftDelete = true
		out.SoftDeleteRetention = sd.RetentionDuration
	}
	if rp := attrs.RetentionPolicy; rp != nil {
		out.RetentionPeriod = rp.RetentionPeriod
		out.RetentionLocked = rp.IsLocked
	}
	return out, nil
}
