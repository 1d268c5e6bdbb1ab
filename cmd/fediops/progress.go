package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/fediops/fediops/cmd/fediops/internal/screen"
)

// progress shows how far a blocklist run is on the terminal's status line: the changes done
// of the destination's total, and when the run waits for the server's rate-limit window. It
// is the blocklist job's Progress; the CLI uses it only when stderr is a terminal.
type progress struct {
	status *screen.Status

	mu          sync.Mutex
	instance    string
	done, total int
}

// Applied is called after each change.
func (p *progress) Applied(instance string, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.instance, p.done, p.total = instance, done, total
	p.status.Set(p.counts())
}

// Waiting is called when the run waits for the rate-limit window to reset at until.
func (p *progress) Waiting(instance string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if instance != p.instance {
		p.instance, p.done, p.total = instance, 0, 0
	}
	sep := "; "
	if p.total == 0 {
		sep = ": "
	}
	p.status.Set(p.counts() + sep + "waiting for the rate-limit window until " + until.Local().Format("15:04:05"))
}

func (p *progress) counts() string {
	if p.total == 0 {
		return "blocklist " + p.instance
	}
	return fmt.Sprintf("blocklist %s: %d/%d changes applied (%d%%)", p.instance, p.done, p.total, p.done*100/p.total)
}
