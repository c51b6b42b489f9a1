package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

var benchLine = regexp.MustCompile(`BenchmarkRescore/windows=(\d+)-\d+\s+\d+\s+([\d.]+) ns/op`)

// scorerBench runs BenchmarkRescore (services/scorer) and compares the
// cost of rescoring a post with 10 and with 100,000 windows.
func scorerBench(ctx context.Context, e *env, o opts) ([]figure, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^$", "-bench", "BenchmarkRescore", "-benchtime", "3s",
		"github.com/ratestream/ratestream/services/scorer")
	cmd.Env = append(cmd.Environ(), "RATESTREAM_TEST_DATABASE_URL="+e.admin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench: %v\n%s", err, out)
	}
	ns := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			ns[m[1]], _ = strconv.ParseFloat(m[2], 64)
			fmt.Println(sc.Text())
		}
	}
	short, long := ns["10"], ns["100000"]
	if short == 0 || long == 0 {
		return nil, fmt.Errorf("benchmark output not understood:\n%s", out)
	}
	ratio := long / short
	return []figure{
		plain("scorer", "rescore, 10 windows", short/1e6, "ms/post"),
		plain("scorer", "rescore, 100,000 windows", long/1e6, "ms/post"),
		target("scorer", "ratio 100,000/10 windows", ratio, "", "<= 1.2", ratio <= 1.2),
	}, nil
}
