// Package plot draws small, standalone SVG charts over time: lines, bars
// and shaded spans, with axes, a legend and an accessible name. The
// simulator, the ratestream command and the query service's web page draw
// with it, so a score looks the same wherever it is shown.
package plot

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Palette is the colour of the n-th series when a series names none.
var Palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}

// Point is one value at one time; a NaN Y breaks a line.
type Point struct {
	At time.Time
	Y  float64
}

// Line is a series drawn as a polyline.
type Line struct {
	Name   string
	Color  string // default: the palette
	Dash   string // SVG stroke-dasharray; "" for solid
	Width  float64
	Points []Point
}

// Bars is a series drawn as bars of Width starting at each point's time.
type Bars struct {
	Name   string
	Color  string
	Width  time.Duration
	Points []Point
}

// Span is a shaded stretch of time.
type Span struct{ From, To time.Time }

// Chart is one chart. The x axis runs from Start to End; the y axis from
// YMin to YMax (when both are zero, from 0 to the largest value).
type Chart struct {
	// ID prefixes the ids of the chart's title and description, which
	// must be unique in a page that shows several charts (default "chart").
	ID         string
	Title      string // shown, and the chart's accessible name
	Desc       string // read by screen readers
	Width      float64
	Height     float64
	XLabel     string
	YLabel     string
	Start, End time.Time
	YMin, YMax float64
	// Clock labels the x axis with UTC clock times; otherwise with the
	// time since Start (1h, 90m).
	Clock     bool
	Spans     []Span
	SpanLabel string
	Bars      []Bars
	Lines     []Line
}

const maxPoints = 1500 // per line; more only makes the file bigger

// SVG renders the chart as a standalone SVG document.
func (c Chart) SVG() string {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 900
	}
	if h == 0 {
		h = 420
	}
	const left, top, bottom = 60.0, 40.0, 50.0
	right := 190.0
	if len(c.Lines)+len(c.Bars) == 0 && c.SpanLabel == "" {
		right = 20
	}
	pw, ph := w-left-right, h-top-bottom
	start, end := c.Start, c.End
	if !end.After(start) {
		end = start.Add(time.Hour)
	}
	ymin, ymax := c.YMin, c.YMax
	if ymin == 0 && ymax == 0 {
		ymax = c.maxY()
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	span := float64(end.Sub(start))
	x := func(t time.Time) float64 { return left + pw*float64(t.Sub(start))/span }
	y := func(v float64) float64 { return top + ph*(1-(v-ymin)/(ymax-ymin)) }
	var b strings.Builder
	id := c.ID
	if id == "" {
		id = "chart"
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s-t %s-d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h, id, id)
	fmt.Fprintf(&b, "<title id=\"%s-t\">%s</title>\n<desc id=\"%s-d\">%s</desc>\n", id, Escape(c.Title), id, Escape(c.Desc))
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15">%s</text>`+"\n", left, Escape(c.Title))
	for _, s := range c.Spans {
		from, to := maxTime(s.From, start), minTime(s.To, end)
		if !to.After(from) {
			continue
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f4c7c3" opacity="0.6"/>`+"\n",
			x(from), top, math.Max(x(to)-x(from), 1.5), ph)
	}
	ystep := niceStep((ymax - ymin) / 5)
	for v := math.Ceil(ymin/ystep) * ystep; v <= ymax+ystep/1000; v += ystep {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+pw, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, number(v))
	}
	step := tickStep(end.Sub(start))
	first := start
	if c.Clock {
		first = start.Truncate(step)
		if first.Before(start) {
			first = first.Add(step)
		}
	}
	for t := first; !t.After(end); t = t.Add(step) {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x(t), x(t), top+ph, top+ph+5)
		lbl := since(t.Sub(start))
		if c.Clock {
			lbl = clock(t, step)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(t), top+ph+18, lbl)
	}
	for i, s := range c.Bars {
		color := pick(s.Color, i)
		bw := pw * float64(s.Width) / span
		for _, p := range s.Points {
			if math.IsNaN(p.Y) || p.At.Before(start) || p.At.After(end) {
				continue
			}
			v := math.Min(math.Max(p.Y, ymin), ymax)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n",
				x(p.At), y(v), math.Max(bw*0.85, 0.8), y(math.Max(ymin, 0))-y(v), color)
		}
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+pw/2, h-10, Escape(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, Escape(c.YLabel))
	for i, l := range c.Lines {
		width := l.Width
		if width == 0 {
			width = 1.6
		}
		dash := l.Dash
		if dash == "" {
			dash = "none"
		}
		var pts []string
		flush := func() {
			if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%.1f" stroke-dasharray="%s" points="%s"/>`+"\n",
					pick(l.Color, i+len(c.Bars)), width, dash, strings.Join(pts, " "))
			} else if len(pts) == 1 {
				fmt.Fprintf(&b, `<circle r="2" fill="%s" cx="%s" cy="%s"/>`+"\n", pick(l.Color, i+len(c.Bars)), strings.Split(pts[0], ",")[0], strings.Split(pts[0], ",")[1])
			}
			pts = pts[:0]
		}
		for _, p := range thin(l.Points, maxPoints) {
			if math.IsNaN(p.Y) || p.At.Before(start) || p.At.After(end) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.At), y(math.Min(math.Max(p.Y, ymin), ymax))))
		}
		flush()
	}
	ly := top + 10
	lx := left + pw + 15
	for i, s := range c.Bars {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="25" height="12" fill="%s"/>`+"\n", lx, ly-6, pick(s.Color, i))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+31, ly+4, Escape(s.Name))
		ly += 20
	}
	for i, l := range c.Lines {
		dash := l.Dash
		if dash == "" {
			dash = "none"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", lx, lx+25, ly, ly, pick(l.Color, i+len(c.Bars)), dash)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+31, ly+4, Escape(l.Name))
		ly += 20
	}
	if c.SpanLabel != "" && len(c.Spans) > 0 {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="25" height="12" fill="#f4c7c3"/>`+"\n", lx, ly-6)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+31, ly+4, Escape(c.SpanLabel))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func (c Chart) maxY() float64 {
	m := 0.0
	for _, l := range c.Lines {
		for _, p := range l.Points {
			if !math.IsNaN(p.Y) {
				m = math.Max(m, p.Y)
			}
		}
	}
	for _, s := range c.Bars {
		for _, p := range s.Points {
			if !math.IsNaN(p.Y) {
				m = math.Max(m, p.Y)
			}
		}
	}
	return m
}

// Sparkline is a small inline line (no axes) of values between ymin and
// ymax, labelled for screen readers.
func Sparkline(label string, points []Point, w, h, ymin, ymax float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, w, h, Escape(label))
	var pts []Point
	for _, p := range points {
		if !math.IsNaN(p.Y) {
			pts = append(pts, p)
		}
	}
	if len(pts) > 0 {
		start, end := pts[0].At, pts[len(pts)-1].At
		span := float64(end.Sub(start))
		var coords []string
		for _, p := range thin(pts, 200) {
			px := w / 2
			if span > 0 {
				px = 1 + (w-2)*float64(p.At.Sub(start))/span
			}
			py := 1 + (h-2)*(1-(math.Min(math.Max(p.Y, ymin), ymax)-ymin)/(ymax-ymin))
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", px, py))
		}
		if len(coords) == 1 {
			coords = append(coords, coords[0])
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, Palette[0], strings.Join(coords, " "))
	}
	b.WriteString("</svg>")
	return b.String()
}

// Histogram draws one bar per label with its count above it.
func Histogram(title, xlabel string, labels []string, counts []int64) string {
	const w, h, left, right, top, bottom = 420.0, 260.0, 50.0, 20.0, 40.0, 50.0
	pw, ph := w-left-right, h-top-bottom
	var peak int64 = 1
	for _, n := range counts {
		peak = max(peak, n)
	}
	var b strings.Builder
	desc := make([]string, len(labels))
	for i, l := range labels {
		desc[i] = fmt.Sprintf("%s: %d", l, counts[i])
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="ht hd" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, "<title id=\"ht\">%s</title>\n<desc id=\"hd\">%s</desc>\n", Escape(title), Escape(strings.Join(desc, ", ")))
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15">%s</text>`+"\n", left, Escape(title))
	slot := pw / float64(max(len(labels), 1))
	for i, l := range labels {
		bh := ph * float64(counts[i]) / float64(peak)
		bx := left + slot*float64(i) + slot*0.1
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", bx, top+ph-bh, slot*0.8, bh, Palette[0])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", bx+slot*0.4, top+ph-bh-4, counts[i])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", bx+slot*0.4, top+ph+18, Escape(l))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, left+pw, top+ph, top+ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+pw/2, h-10, Escape(xlabel))
	b.WriteString("</svg>\n")
	return b.String()
}

// Escape makes text safe inside SVG or HTML.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

func pick(color string, i int) string {
	if color != "" {
		return color
	}
	return Palette[i%len(Palette)]
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

func tickStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if d/s <= 12 {
			return s
		}
	}
	return 24 * time.Hour * (d/(24*time.Hour)/12 + 1)
}

func since(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

func clock(t time.Time, step time.Duration) string {
	switch {
	case step >= 24*time.Hour:
		return t.UTC().Format("Jan 2")
	case step < time.Minute:
		return t.UTC().Format("15:04:05")
	}
	return t.UTC().Format("15:04")
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func number(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
