package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// progress draws one self-overwriting status line for a long run (what
// is done, its rate, the ETA and, where there are partitions, the ones
// still behind) on a terminal, and nothing anywhere else: logs and pipes
// get only the command's own output.
type progress struct {
	w     io.Writer
	on    bool
	unit  string
	total int64 // 0: unknown
	began time.Time

	mu    sync.Mutex
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, unit string, total int64) *progress {
	return &progress{w: w, on: isTerminal(w), unit: unit, total: total, began: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// partPos is one partition's position against its target.
type partPos struct {
	Partition  int
	At, Target int64
}

// update redraws the line at most four times a second.
func (p *progress) update(done int64, parts []partPos) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.drawn = true
	rate := float64(done) / max(time.Since(p.began).Seconds(), 0.001)
	var b strings.Builder
	if p.total > 0 && done <= p.total {
		fmt.Fprintf(&b, "%d of %d %s (%.0f%%)", done, p.total, p.unit, 100*float64(done)/float64(p.total))
	} else {
		fmt.Fprintf(&b, "%d %s", done, p.unit)
	}
	fmt.Fprintf(&b, ", %.0f/s", rate)
	if p.total > done && rate > 0 {
		fmt.Fprintf(&b, ", ETA %s", time.Duration(float64(p.total-done)/rate*float64(time.Second)).Round(time.Second))
	}
	if len(parts) > 0 {
		var behind []partPos
		for _, pp := range parts {
			if pp.At < pp.Target {
				behind = append(behind, pp)
			}
		}
		slices.SortFunc(behind, func(a, b partPos) int { return int((b.Target - b.At) - (a.Target - a.At)) })
		fmt.Fprintf(&b, "; %d/%d partitions done", len(parts)-len(behind), len(parts))
		for i, pp := range behind {
			if i == 3 {
				fmt.Fprintf(&b, " …")
				break
			}
			fmt.Fprintf(&b, " p%d %d/%d", pp.Partition, pp.At, pp.Target)
		}
	}
	fmt.Fprintf(p.w, "\r\033[K%s", b.String())
}

// finish ends the line so that what follows starts on a new one.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
