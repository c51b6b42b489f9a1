package sim

import (
	"time"

	"github.com/ratestream/ratestream/pkg/plot"
)

// Plot draws the named series (strategies) over time against the honest
// mean, with the dishonest phases shaded, as a standalone SVG document.
func Plot(rep *Report, names []string) string {
	origin := time.Unix(0, 0).UTC()
	var end time.Duration
	if n := len(rep.Points); n > 0 {
		end = rep.Points[n-1].At
	}
	if end <= 0 {
		end = time.Hour
	}
	c := plot.Chart{
		Title:     rep.Scenario + ": score over event time",
		Desc:      "The score of each strategy against the honest raters' mean; shaded: the campaign.",
		XLabel:    "event time since start",
		YLabel:    "score",
		Start:     origin,
		End:       origin.Add(end),
		YMin:      0,
		YMax:      5,
		SpanLabel: "campaign",
	}
	for _, s := range rep.Campaign {
		c.Spans = append(c.Spans, plot.Span{From: origin.Add(s[0]), To: origin.Add(s[1])})
	}
	series := func(name, color, dash string, width float64, get func(Point) float64) plot.Line {
		l := plot.Line{Name: name, Color: color, Dash: dash, Width: width, Points: make([]plot.Point, len(rep.Points))}
		for i, p := range rep.Points {
			l.Points[i] = plot.Point{At: origin.Add(p.At), Y: get(p)}
		}
		return l
	}
	c.Lines = append(c.Lines, series("honest mean", "#000", "6 4", 2, func(p Point) float64 { return p.HonestMean }))
	for i, name := range names {
		c.Lines = append(c.Lines, series(name, plot.Palette[i%len(plot.Palette)], "", 1.6, func(p Point) float64 { return p.Scores[name] }))
	}
	return c.SVG()
}
