package sim

import (
	"fmt"
	"math"
	"strings"
	"time"
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}

// Plot draws the named series (strategies) over time against the honest
// mean, with the dishonest phases shaded, as a standalone SVG document.
func Plot(rep *Report, names []string) string {
	const w, h, left, right, top, bottom = 900.0, 420.0, 60.0, 190.0, 40.0, 50.0
	pw, ph := w-left-right, h-top-bottom
	var end time.Duration
	if n := len(rep.Points); n > 0 {
		end = rep.Points[n-1].At
	}
	if end <= 0 {
		end = time.Hour
	}
	x := func(d time.Duration) float64 { return left + pw*float64(d)/float64(end) }
	y := func(s float64) float64 { return top + ph*(1-s/5) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15">%s: score over event time</text>`+"\n", left, esc(rep.Scenario))
	for _, c := range rep.Campaign {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f4c7c3" opacity="0.6"/>`+"\n",
			x(c[0]), top, math.Max(x(c[1])-x(c[0]), 1.5), ph)
	}
	for s := 0; s <= 5; s++ {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+pw, y(float64(s)), y(float64(s)))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%d</text>`+"\n", left-6, y(float64(s))+4, s)
	}
	step := tickStep(end)
	for t := time.Duration(0); t <= end; t += step {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x(t), x(t), top+ph, top+ph+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(t), top+ph+18, label(t))
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">event time since start</text>`+"\n", left+pw/2, h-10)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">score</text>`+"\n", top+ph/2)
	line := func(get func(Point) float64, color, dash string, width float64) {
		var pts []string
		flush := func() {
			if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%.1f" stroke-dasharray="%s" points="%s"/>`+"\n", color, width, dash, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for _, p := range thin(rep.Points, 1500) {
			v := get(p)
			if math.IsNaN(v) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.At), y(v)))
		}
		flush()
	}
	line(func(p Point) float64 { return p.HonestMean }, "#000", "6 4", 2)
	for i, name := range names {
		line(func(p Point) float64 { return p.Scores[name] }, palette[i%len(palette)], "none", 1.6)
	}
	ly := top + 10
	legend := func(color, dash, text string) {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", left+pw+15, left+pw+40, ly, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", left+pw+46, ly+4, esc(text))
		ly += 20
	}
	legend("#000", "6 4", "honest mean")
	for i, name := range names {
		legend(palette[i%len(palette)], "none", name)
	}
	if len(rep.Campaign) > 0 {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="25" height="12" fill="#f4c7c3"/>`+"\n", left+pw+15, ly-6)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">campaign</text>`+"\n", left+pw+46, ly+4)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// thin keeps at most n points, always including the last.
func thin(pts []Point, n int) []Point {
	if len(pts) <= n {
		return pts
	}
	step := float64(len(pts)) / float64(n)
	out := make([]Point, 0, n+1)
	for i := 0.0; int(i) < len(pts); i += step {
		out = append(out, pts[int(i)])
	}
	return append(out, pts[len(pts)-1])
}

func tickStep(end time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if end/s <= 12 {
			return s
		}
	}
	return 48 * time.Hour
}

func label(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dm", int(d.Minutes()))
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
