// Package deploycheck validates the deployment files by parsing them:
// there is no container engine on the build machines to run them.
package deploycheck

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ratestream/ratestream/tools/testenv"
)

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(testenv.Root(), "docker-compose.yml")},
		cli.WithWorkingDirectory(testenv.Root()), cli.WithName("ratestream"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func TestComposePromises(t *testing.T) {
	p := loadCompose(t)
	svc := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		return s
	}
	if img := svc("kafka").Image; !strings.HasPrefix(img, "apache/kafka:") {
		t.Errorf("kafka image %q, want the official apache/kafka", img)
	}
	if roles := svc("kafka").Environment["KAFKA_PROCESS_ROLES"]; roles == nil || *roles != "broker,controller" {
		t.Errorf("kafka is not in KRaft mode (KAFKA_PROCESS_ROLES=%v)", roles)
	}
	if img := svc("postgres").Image; img != "postgres:16" {
		t.Errorf("postgres image %q, want postgres:16", img)
	}
	if svc("kafka").HealthCheck == nil || svc("postgres").HealthCheck == nil {
		t.Error("kafka and postgres need healthchecks for depends_on: service_healthy")
	}
	mig := svc("migrate")
	if mig.Build == nil || mig.Build.Args["PKG"] == nil || *mig.Build.Args["PKG"] != "./tools/cmd/dbmigrate" {
		t.Errorf("migrate does not build the migrate command: %+v", mig.Build)
	}
	ports := map[string]string{"ingest": "8080", "query": "8081", "windower": "8082", "scorer": "8083"}
	for name, port := range ports {
		s := svc(name)
		if s.Build == nil || *s.Build.Args["PKG"] != "./services/"+name {
			t.Errorf("%s is not built from ./services/%s", name, name)
			continue
		}
		if _, err := os.Stat(filepath.Join(testenv.Root(), s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: Dockerfile %s: %v", name, s.Build.Dockerfile, err)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
		published := false
		public := name == "ingest" || name == "query" // an API for clients
		for _, pc := range s.Ports {
			published = published || (pc.Published == port && pc.Target == mustAtoi(t, port))
			api := public && pc.Target == mustAtoi(t, port)
			if !api && pc.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes its port %d (metrics, readiness) on every interface; bind it to 127.0.0.1", name, pc.Target)
			}
		}
		if !published {
			t.Errorf("%s does not publish %s", name, port)
		}
		if a := s.Environment["ADMIN_ADDR"]; public && (a == nil || *a == "") {
			t.Errorf("%s: its API port is public: ADMIN_ADDR must serve metrics and readiness elsewhere", name)
		}
		for dep, cond := range map[string]string{"kafka": "service_healthy", "postgres": "service_healthy", "migrate": "service_completed_successfully"} {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != cond {
				t.Errorf("%s: depends_on %s condition %q, want %s", name, dep, d.Condition, cond)
			}
		}
		for _, env := range []string{"DATABASE_URL", "KAFKA_BROKERS"} {
			if s.Environment[env] == nil {
				t.Errorf("%s lacks %s", name, env)
			}
		}
		if m := s.Environment["AUTH_MODE"]; name != "windower" && name != "scorer" && (m == nil || *m != "jwt") {
			t.Errorf("%s: AUTH_MODE %v, want jwt by default", name, m)
		}
	}
}

func mustAtoi(t *testing.T, s string) uint32 {
	var n uint32
	for _, c := range s {
		n = n*10 + uint32(c-'0')
	}
	return n
}

// Every path the Dockerfile copies and every package the compose file
// builds must exist.
func TestDockerfileReferencesExist(t *testing.T) {
	root := testenv.Root()
	b, err := os.ReadFile(filepath.Join(root, "deployments", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	copies := 0
	var copied []string
	user := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "USER" {
			user = f[1]
		}
		if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--from") {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			copies++
			copied = append(copied, strings.TrimSuffix(src, "/"))
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("Dockerfile copies %s: %v", src, err)
			}
		}
	}
	if copies == 0 {
		t.Fatal("no COPY lines found")
	}
	// The kubelet can only check runAsNonRoot against a numeric user.
	if !regexp.MustCompile(`^[1-9][0-9]*:[1-9][0-9]*$`).MatchString(user) {
		t.Errorf("the image's USER %q is not numeric", user)
	}
	// The build compiles in the workspace: every module it uses is copied.
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+\./(\S+)$`).FindAllStringSubmatch(string(work), -1) {
		covered := false
		for _, c := range copied {
			covered = covered || m[1] == c || strings.HasPrefix(m[1], c+"/")
		}
		if !covered {
			t.Errorf("go.work uses %s, which the Dockerfile does not copy", m[1])
		}
	}
	for _, s := range loadCompose(t).Services {
		if s.Build == nil {
			continue
		}
		pkg := *s.Build.Args["PKG"]
		if _, err := os.Stat(filepath.Join(root, pkg, "main.go")); err != nil {
			t.Errorf("service %s builds %s: %v", s.Name, pkg, err)
		}
	}
}

// exportedMetrics reads, from the services' source, every metric name
// with the labels it is declared with.
func exportedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	root := testenv.Root()
	var source strings.Builder
	for _, dir := range []string{"pkg", "services"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				src, _ := os.ReadFile(p)
				source.Write(src)
			}
			return nil
		})
	}
	src := source.String()
	decl := regexp.MustCompile(`Name:\s*"((?:http|ingest|windower|scorer|query|ratestream)_[a-z_]+)"`)
	labels := regexp.MustCompile(`^[^}]*?\}[^\[]*?\[\]string\{([^}]*)\}`)
	out := map[string][]string{}
	for _, m := range decl.FindAllStringSubmatchIndex(src, -1) {
		name := src[m[2]:m[3]]
		rest := src[m[1]:min(len(src), m[1]+400)]
		var ls []string
		if l := labels.FindStringSubmatch(rest); l != nil && !strings.Contains(rest[:strings.Index(rest, l[1])], "Name:") {
			for _, x := range strings.Split(l[1], ",") {
				if x = strings.Trim(strings.TrimSpace(x), `"`); x != "" {
					ls = append(ls, x)
				}
			}
		}
		out[name] = ls
		if strings.HasSuffix(name, "_seconds") {
			out[name+"_bucket"] = append(append([]string{}, ls...), "le")
		}
	}
	return out
}

var selector = regexp.MustCompile(`\b((?:http|ingest|windower|scorer|query|ratestream)_[a-z_]+)\b(\{[^}]*\})?`)

// checkQuery fails for a metric no service exports, a label matcher on a
// label the metric does not have, or a job matcher (the services are
// scraped through annotations: job names depend on the scrape config).
func checkQuery(t *testing.T, where, expr string, metrics map[string][]string) int {
	t.Helper()
	n := 0
	if strings.Contains(expr, "job=") || strings.Contains(expr, "job!") || strings.Contains(expr, "by (job)") {
		t.Errorf("%s: %s matches on job, which depends on the scrape configuration", where, expr)
	}
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		n++
		ls, ok := metrics[m[1]]
		if !ok {
			t.Errorf("%s queries %s, which no service exports", where, m[1])
			continue
		}
		if m[2] == "" {
			continue
		}
		for _, matcher := range strings.Split(strings.Trim(m[2], "{}"), ",") {
			label := strings.TrimSpace(strings.FieldsFunc(matcher, func(r rune) bool { return r == '=' || r == '!' || r == '~' })[0])
			if !slices.Contains(ls, label) {
				t.Errorf("%s: %s{%s}: %s has no label %q (it has %v)", where, m[1], matcher, m[1], label, ls)
			}
		}
	}
	return n
}

// Every metric the dashboard and the alerts query is one the services
// export, with the labels they match on.
func TestDashboardAndAlertsQueryExportedMetrics(t *testing.T) {
	metrics := exportedMetrics(t)
	if !slices.Equal(metrics["http_requests_total"], []string{"route", "method", "status"}) ||
		!slices.Contains(metrics["ratestream_build_info"], "service") {
		t.Fatalf("label extraction: %v", metrics)
	}
	b, err := os.ReadFile(filepath.Join(testenv.Root(), "deployments", "dashboards", "ratestream.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	checked := 0
	for _, p := range dash.Panels {
		if len(p.Targets) != 1 {
			t.Errorf("panel %q has %d queries: one per panel, so that no series hides another", p.Title, len(p.Targets))
		}
		for _, tg := range p.Targets {
			checked += checkQuery(t, "panel "+p.Title, tg.Expr, metrics)
		}
	}
	if checked < 10 {
		t.Fatalf("only %d metric references found in the dashboard", checked)
	}
	for _, g := range render(t, "prod").rules[0].Spec.Groups {
		for _, r := range g.Rules {
			checkQuery(t, "alert "+r.Alert, r.Expr, metrics)
		}
	}
}

// A service binary built as the image builds it is static: it has no
// interpreter and no dynamic section, so it runs on distroless/static.
func TestServiceBinaryIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	out := filepath.Join(t.TempDir(), "ingest")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/ratestream/ratestream/pkg/buildinfo.Version=test",
		"-o", out, "./services/ingest")
	cmd.Dir = testenv.Root()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".dynamic") != nil {
		t.Error("the binary has a dynamic section")
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %s program header", p.Type)
		}
	}
}
