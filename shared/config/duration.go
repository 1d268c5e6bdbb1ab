package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/domain"
)

// Duration is a time.Duration that reads from a TOML string such as "26h" or "15m"
// (time.ParseDuration syntax), or a whole number of days such as "7d".
type Duration struct {
	time.Duration
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s == "" {
		d.Duration = 0
		return nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 && days <= 3650 {
			d.Duration = time.Duration(days) * 24 * time.Hour
			return nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. \"26h\", \"15m\", \"90s\" or \"7d\"): %w", s, err)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// LoopbackHost reports whether h names this machine (localhost or a loopback address): the
// only hosts where plain http is accepted.
func LoopbackHost(h string) bool { return domain.IsLoopback(h) }
