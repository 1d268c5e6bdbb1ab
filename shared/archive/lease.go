package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Lease is exclusive permission to work on something (an instance's triage, a destination's
// blocklist sync) for a while. It is an object under "leases/" written with a generation
// precondition, so two runs racing for it cannot both win. A lease whose holder died expires
// after its TTL and can then be taken over.
type Lease struct {
	store  Store
	key    string
	gen    int64
	Holder string    `json:"holder"`
	Expiry time.Time `json:"expires"`
}

// HeldError says that someone else holds a lease.
type HeldError struct {
	Name   string
	Holder string
	Expiry time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease %s is held by %s until %s", e.Name, e.Holder, e.Expiry.UTC().Format(time.RFC3339))
}

// ErrLeaseHeld matches every *HeldError with errors.Is.
var ErrLeaseHeld = errors.New("lease held")

// ErrLeaseLost says that a lease was taken over by another holder while it was held.
var ErrLeaseLost = errors.New("lease taken over by another run")

// Is makes errors.Is(err, ErrLeaseHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrLeaseHeld }

// AcquireLease takes the lease name for holder until now+ttl. It fails with a *HeldError if a
// live lease is held by another holder.
func AcquireLease(ctx context.Context, s Store, name, holder string, now time.Time, ttl time.Duration) (*Lease, error) {
	key := "leases/" + name + ".json"
	l := &Lease{store: s, key: key, Holder: holder, Expiry: now.Add(ttl)}
	data, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		cur, gen, err := s.ReadVersion(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			gen = 0
		case err != nil:
			return nil, fmt.Errorf("acquire lease %s: %w", name, err)
		default:
			var held Lease
			if jerr := json.Unmarshal(cur, &held); jerr == nil && held.Holder != holder && now.Before(held.Expiry) {
				return nil, &HeldError{Name: name, Holder: held.Holder, Expiry: held.Expiry}
			}
			// expired, unreadable, or our own: take it over at this generation
		}
		ng, err := s.WriteIf(ctx, key, data, gen)
		if errors.Is(err, ErrPrecondition) {
			continue // someone else moved first: look again
		}
		if err != nil {
			return nil, fmt.Errorf("acquire lease %s: %w", name, err)
		}
		l.gen = ng
		return l, nil
	}
	return nil, fmt.Errorf("acquire lease %s: lost the race three times: %w", name, ErrLeaseHeld)
}

// Release gives the lease up by marking it expired (the object stays: archives never delete).
// If the lease was taken over meanwhile it changes nothing and returns an error wrapping
// ErrLeaseLost: the caller worked for a while without holding it.
func (l *Lease) Release(ctx context.Context) error {
	released := Lease{Holder: l.Holder}
	data, err := json.Marshal(&released)
	if err != nil {
		return err
	}
	_, err = l.store.WriteIf(ctx, l.key, data, l.gen)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrPrecondition):
		return fmt.Errorf("release lease %s: %w", l.key, ErrLeaseLost)
	}
	return fmt.Errorf("release lease: %w", err)
}

// Renew extends the lease to now+ttl; it fails with ErrPrecondition if the lease was written
// by someone else since this holder last wrote it.
func (l *Lease) Renew(ctx context.Context, now time.Time, ttl time.Duration) error {
	next := *l
	next.Expiry = now.Add(ttl)
	data, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	g, err := l.store.WriteIf(ctx, l.key, data, l.gen)
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	l.gen, l.Expiry = g, next.Expiry
	return nil
}
