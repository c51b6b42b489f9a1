package plot

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// wellFormed fails unless doc parses as XML.
func wellFormed(t *testing.T, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
	}
}

func TestChart(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	c := Chart{
		Title: `post <1> & "friends"`, Start: t0, End: t0.Add(2 * time.Hour), YMin: 0, YMax: 5, Clock: true,
		Spans: []Span{{From: t0.Add(30 * time.Minute), To: t0.Add(40 * time.Minute)}}, SpanLabel: "held out",
		Bars: []Bars{{Name: "volume", Width: time.Minute, Points: []Point{{t0, 3}}}},
		Lines: []Line{{Name: "score", Points: []Point{
			{t0, 1}, {t0.Add(time.Minute), 2}, {t0.Add(2 * time.Minute), math.NaN()}, {t0.Add(3 * time.Minute), 3}, {t0.Add(4 * time.Minute), 4},
		}}},
	}
	svg := c.SVG()
	wellFormed(t, svg)
	if n := strings.Count(svg, "<polyline"); n != 2 {
		t.Errorf("a NaN must break the line in two: %d polylines", n)
	}
	for _, want := range []string{"post &lt;1&gt; &amp; &quot;friends&quot;", ">10:00<", ">held out<", `role="img"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("missing %q", want)
		}
	}
	wellFormed(t, Sparkline("score of <post>", c.Lines[0].Points, 100, 20, 0, 5))
	h := Histogram("ratings", "score", []string{"0", "1", "2"}, []int64{4, 0, 9})
	wellFormed(t, h)
	if !strings.Contains(h, "0: 4, 1: 0, 2: 9") {
		t.Errorf("histogram description must list every count:\n%s", h)
	}
}
