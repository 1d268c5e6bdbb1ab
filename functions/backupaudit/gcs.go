package backupaudit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/gcpbackup"
)

// auditBucket runs the gcs.* checks on one bucket.
func auditBucket(ctx context.Context, src Buckets, name string, th Thresholds) []Check {
	target := bucketTarget(name)
	if src == nil {
		return missingSource(bucketIDs(), target, "Cloud Storage")
	}
	b, err := src.Bucket(ctx, name)
	if err != nil {
		return errorChecks(bucketIDs(), target, bucketResource(name), err, th)
	}
	return []Check{
		gcsGeoRedundant(name, b, th),
		gcsSoftDelete(name, b, th),
		gcsVersioning(name, b, th),
	}
}

func gcsGeoRedundant(name string, b gcpbackup.Bucket, th Thresholds) Check {
	c := Check{ID: GCSGeoRedundant, Target: bucketTarget(name), Expected: expectation(GCSGeoRedundant, th)}
	lt := strings.ToLower(b.LocationType)
	c.Observed = orDefault(lt, "location type not reported")
	if b.Location != "" {
		c.Observed += " " + b.Location
	}
	if len(b.DataLocations) > 0 {
		c.Observed += " (" + strings.Join(b.DataLocations, ", ") + ")"
	}
	if b.RPO == "ASYNC_TURBO" {
		c.Observed += ", turbo replication"
	}
	if lt == "multi-region" || lt == "dual-region" {
		c.Status = Pass
		return c
	}
	c.Status = Fail
	c.Hint = fmt.Sprintf("a bucket's location cannot be changed: create a dual- or multi-region bucket and copy the media, e.g. gcloud storage buckets create gs://%s-eu --location=EU --soft-delete-duration=7d && gcloud storage rsync --recursive gs://%s gs://%s-eu, then point Mastodon's S3_BUCKET at it",
		name, name, name)
	return c
}

func gcsSoftDelete(name string, b gcpbackup.Bucket, th Thresholds) Check {
	c := Check{ID: GCSSoftDelete, Target: bucketTarget(name), Expected: expectation(GCSSoftDelete, th)}
	min := time.Duration(th.MinSoftDeleteDays) * 24 * time.Hour
	d := b.SoftDeleteRetention
	switch {
	case !b.SoftDelete:
		c.Status, c.Observed = Fail, "no soft delete policy"
	case d <= 0:
		c.Status, c.Observed = Fail, "soft delete disabled (retention 0)"
	case d >= min:
		c.Status, c.Observed = Pass, "soft delete keeps deleted objects "+retention(d)
	default:
		c.Status, c.Observed = Fail, "soft delete keeps deleted objects "+retention(d)
	}
	if c.Status == Fail {
		c.Hint = fmt.Sprintf("gcloud storage buckets update gs://%s --soft-delete-duration=%dd", name, th.MinSoftDeleteDays)
	}
	return c
}

// retention formats a retention duration in days when it is a whole number of days.
func retention(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return days(int(d / (24 * time.Hour)))
	}
	return age(d)
}

func gcsVersioning(name string, b gcpbackup.Bucket, th Thresholds) Check {
	c := Check{ID: GCSVersioning, Target: bucketTarget(name), Expected: expectation(GCSVersioning, th)}
	if b.Versioning {
		c.Status, c.Observed = Pass, "object versioning enabled"
		return c
	}
	c.Status = Warn
	c.Observed = "object versioning disabled: an overwritten object cannot be recovered"
	c.Hint = fmt.Sprintf("gcloud storage buckets update gs://%s --versioning (add a lifecycle rule deleting noncurrent versions after a few days to bound the cost)", name)
	return c
}
