package deploycheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/ratestream/ratestream/tools/testenv"
)

// rendered is an overlay rendered by kustomize and decoded, strictly,
// into the Kubernetes API's own types.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs        []*policyv1.PodDisruptionBudget
	netpols     map[string]*networkingv1.NetworkPolicy
	rules       []*prometheusRule
}

// prometheusRule is the prometheus-operator CRD, as far as it is used.
type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// strict decodes JSON into v, refusing fields v's type does not have:
// a misspelt or misplaced field fails here rather than being dropped by
// the API server.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func render(t *testing.T, overlay string) *rendered {
	t.Helper()
	dir := filepath.Join(testenv.Root(), "deployments", "kubernetes", "overlays", overlay)
	resmap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", overlay, err)
	}
	r := &rendered{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		netpols: map[string]*networkingv1.NetworkPolicy{}}
	for _, res := range resmap.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		j, err := sigsyaml.YAMLToJSON(y)
		if err != nil {
			t.Fatal(err)
		}
		var obj any
		kind := res.GetKind()
		switch kind {
		case "Deployment":
			d := &appsv1.Deployment{}
			obj, r.deployments[res.GetName()] = d, d
		case "Service":
			s := &corev1.Service{}
			obj, r.services[res.GetName()] = s, s
		case "ConfigMap":
			c := &corev1.ConfigMap{}
			obj, r.configMaps[res.GetName()] = c, c
		case "HorizontalPodAutoscaler":
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			obj, r.hpas[res.GetName()] = h, h
		case "PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			obj = p
			r.pdbs = append(r.pdbs, p)
		case "NetworkPolicy":
			n := &networkingv1.NetworkPolicy{}
			obj, r.netpols[res.GetName()] = n, n
		case "PrometheusRule":
			p := &prometheusRule{}
			obj = p
			r.rules = append(r.rules, p)
		default:
			t.Fatalf("%s: %s %s has no check", overlay, kind, res.GetName())
		}
		if err := strict(j, obj); err != nil {
			t.Errorf("%s: %s %s does not decode into the API's type: %v", overlay, kind, res.GetName(), err)
		}
	}
	return r
}

var services = map[string]struct {
	port   int32
	public bool    // reached by clients
	egress []int32 // beyond DNS and Kafka (kafkaEgress)
	ops    int32   // metrics, readiness, probes: the API's own port unless public
}{
	"ingest":   {8080, true, []int32{443, 5432}, 9090},
	"windower": {8082, false, []int32{5432}, 8082},
	"scorer":   {8083, false, []int32{5432}, 8083},
	"query":    {8081, true, []int32{443, 5432}, 9090},
}

// kafkaEgress adds the brokers' port to what a service may reach when its
// settings have a Kafka client (a broker.Config in its main.go): a service
// that starts talking to Kafka cannot ship with a policy that forbids it.
func kafkaEgress(t *testing.T, name string, egress []int32) []int32 {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testenv.Root(), "services", name, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(src, []byte("broker.Config")) {
		egress = append(slices.Clone(egress), 9092)
	}
	slices.Sort(egress)
	return egress
}

func TestKubernetesOverlaysPassPolicy(t *testing.T) {
	for _, overlay := range []string{"dev", "prod"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			if len(r.deployments) != len(services) {
				t.Fatalf("deployments %v, want the four services", slices.Collect(mapsKeys(r.deployments)))
			}
			cfg := r.configMaps["ratestream-config"]
			if cfg == nil || cfg.Data["AUTH_MODE"] != "jwt" || cfg.Data["AUTH_JWKS_URL"] == "" || cfg.Data["AUTH_ISSUER"] == "" {
				t.Errorf("the services' config must default to jwt with an issuer and JWKS: %v", cfg)
			}
			if overlay == "prod" && (cfg.Data["KAFKA_REPLICATION"] != "3" || cfg.Data["KAFKA_MIN_INSYNC_REPLICAS"] != "2") {
				t.Errorf("prod: replication %q, min ISR %q; want 3 and 2", cfg.Data["KAFKA_REPLICATION"], cfg.Data["KAFKA_MIN_INSYNC_REPLICAS"])
			}
			if overlay == "prod" {
				checkTrustedProxies(t, cfg.Data["TRUSTED_PROXIES"])
				if u := cfg.Data["PUBLIC_URL"]; !strings.HasPrefix(u, "https://") {
					t.Errorf("prod: PUBLIC_URL %q, want the https URL clients reach", u)
				}
			}
			for name, d := range r.deployments {
				checkDeployment(t, name, d)
			}
			for _, name := range []string{"ingest", "query"} {
				h := r.hpas[name]
				if h == nil || h.Spec.ScaleTargetRef.Name != name || h.Spec.MaxReplicas <= *h.Spec.MinReplicas || len(h.Spec.Metrics) == 0 ||
					h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
					t.Errorf("%s: no HorizontalPodAutoscaler on CPU", name)
				}
				if r.deployments[name].Spec.Replicas != nil {
					t.Errorf("%s: replicas set on a Deployment its autoscaler owns (each apply would reset them)", name)
				}
				if r.services[name] == nil {
					t.Errorf("%s: no Service", name)
				}
			}
			if n := r.deployments["windower"].Spec.Replicas; n == nil || *n > int32(mustAtoi(t, cfg.Data["KAFKA_PARTITIONS"])) {
				t.Errorf("windower replicas %v: more than KAFKA_PARTITIONS would idle", n)
			}
			for name := range services {
				covered := false
				for _, p := range r.pdbs {
					if p.Spec.Selector.MatchLabels["app"] == name && (p.Spec.MaxUnavailable != nil || p.Spec.MinAvailable != nil) {
						covered = true
					}
				}
				if !covered {
					t.Errorf("%s: no PodDisruptionBudget", name)
				}
			}
			checkNetworkPolicies(t, r)
			if len(r.rules) != 1 || len(r.rules[0].Spec.Groups) == 0 {
				t.Errorf("want one PrometheusRule with alerts")
			}
		})
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func checkDeployment(t *testing.T, name string, d *appsv1.Deployment) {
	t.Helper()
	want, ok := services[name]
	if !ok {
		t.Errorf("unexpected Deployment %s", name)
		return
	}
	pod := d.Spec.Template.Spec
	if d.Spec.Selector == nil || d.Spec.Selector.MatchLabels["app"] != name || d.Spec.Template.Labels["app"] != name {
		t.Errorf("%s: selector and pod labels must be app=%s", name, name)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: the pod must run as non-root user 65532 (the image's USER) with the RuntimeDefault seccomp profile", name)
	}
	// Migrations first: an init container applies them (golang-migrate
	// holds a PostgreSQL advisory lock while it does).
	if len(pod.InitContainers) != 1 || !strings.HasPrefix(pod.InitContainers[0].Image, "ratestream/dbmigrate:") ||
		!slices.Equal(pod.InitContainers[0].Args, []string{"up"}) {
		t.Errorf("%s: the migrations must run before the service (init container dbmigrate up)", name)
	}
	all := append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...)
	for _, c := range all {
		where := name + "/" + c.Name
		image, tag, _ := strings.Cut(c.Image, ":")
		if tag == "" || tag == "latest" || strings.Contains(image, "@") && tag == "" {
			t.Errorf("%s: image %q is not pinned to a release", where, c.Image)
		}
		res := c.Resources
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if res.Requests.Name(r, "").IsZero() || res.Limits.Name(r, "").IsZero() {
				t.Errorf("%s: no %s request and limit", where, r)
			}
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
			*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s: the container must have a read-only root filesystem, no privilege escalation and drop ALL capabilities", where)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: want one container", name)
	}
	c := pod.Containers[0]
	if c.Image != "" && !strings.HasPrefix(c.Image, "ratestream/"+name+":") {
		t.Errorf("%s: image %s", name, c.Image)
	}
	var ports []int32
	for _, p := range c.Ports {
		ports = append(ports, p.ContainerPort)
	}
	if wantPorts := slices.Compact([]int32{want.port, want.ops}); !slices.Equal(ports, wantPorts) {
		t.Errorf("%s: container ports %v, want %v", name, ports, wantPorts)
	}
	addr := strings.ToUpper(name) + "_ADDR"
	memFromLimit, adminSet := false, false
	for _, e := range c.Env {
		if e.Name == addr && e.Value != fmt.Sprintf(":%d", want.port) {
			t.Errorf("%s: %s=%s, but the port says %d", name, addr, e.Value, want.port)
		}
		if e.Name == "ADMIN_ADDR" {
			adminSet = true
			if e.Value != fmt.Sprintf(":%d", want.ops) || want.ops == want.port {
				t.Errorf("%s: ADMIN_ADDR=%s, want :%d on a service clients reach, unset otherwise", name, e.Value, want.ops)
			}
		}
		if e.Name == "MEMORY_LIMIT_BYTES" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
			e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" && e.ValueFrom.ResourceFieldRef.ContainerName == c.Name {
			memFromLimit = true
		}
	}
	if want.public && !adminSet {
		t.Errorf("%s: clients reach its port: ADMIN_ADDR must move metrics and readiness to port %d", name, want.ops)
	}
	if !memFromLimit {
		t.Errorf("%s: MEMORY_LIMIT_BYTES must come from the container's memory limit (downward API): the Go memory limit is set from it", name)
	}
	probe := func(kind string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.IntValue() != int(want.ops) {
			t.Errorf("%s: %s probe must GET %s on port %d", name, kind, path, want.ops)
		}
	}
	probe("startup", c.StartupProbe, "/healthz")
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	grace := int64(30)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	// The services drain within HTTP_SHUTDOWN_TIMEOUT (15 s) after SIGTERM;
	// preStop and the drain must fit in the grace period.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil ||
		c.Lifecycle.PreStop.Sleep.Seconds+15 >= grace {
		t.Errorf("%s: want a preStop sleep that, with the 15 s drain, is shorter than terminationGracePeriodSeconds (%d)", name, grace)
	}
	if d.Spec.Template.Annotations["prometheus.io/scrape"] != "true" || d.Spec.Template.Annotations["prometheus.io/port"] != fmt.Sprint(want.ops) {
		t.Errorf("%s: scrape annotations must name port %d", name, want.ops)
	}
}

// checkNetworkPolicies: everything denied by default; each service
// receives only from clients (ingest, query) or Prometheus, and sends
// only to DNS and the ports of the README's diagram.
func checkNetworkPolicies(t *testing.T, r *rendered) {
	t.Helper()
	deny := r.netpols["default-deny"]
	if deny == nil || len(deny.Spec.Ingress) != 0 || len(deny.Spec.Egress) != 0 || len(deny.Spec.PolicyTypes) != 2 ||
		deny.Spec.PodSelector.MatchLabels["app.kubernetes.io/part-of"] != "ratestream" {
		t.Errorf("want a default-deny policy for ingress and egress of every ratestream pod")
	}
	for name, want := range services {
		np := r.netpols[name]
		if np == nil || np.Spec.PodSelector.MatchLabels["app"] != name {
			t.Errorf("%s: no NetworkPolicy", name)
			continue
		}
		var in []int32
		for _, rule := range np.Spec.Ingress {
			monitoring := len(rule.From) == 1 && rule.From[0].NamespaceSelector != nil &&
				rule.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "monitoring"
			for _, p := range rule.Ports {
				in = append(in, p.Port.IntVal)
				if p.Port.IntVal == want.ops && !monitoring {
					t.Errorf("%s: only Prometheus (namespace monitoring) may reach port %d (metrics, readiness)", name, want.ops)
				}
			}
		}
		slices.Sort(in)
		if wantIn := slices.Sorted(slices.Values(slices.Compact([]int32{want.port, want.ops}))); !slices.Equal(in, wantIn) {
			t.Errorf("%s: ingress ports %v, want only %v", name, in, wantIn)
		}
		if svc := r.services[name]; svc != nil {
			for _, p := range svc.Spec.Ports {
				if p.TargetPort.IntValue() != int(want.port) {
					t.Errorf("%s: its Service exposes port %v, not only the API's %d", name, p.TargetPort, want.port)
				}
			}
		}
		var out []int32
		for _, rule := range np.Spec.Egress {
			for _, p := range rule.Ports {
				if p.Port.IntVal != 53 {
					out = append(out, p.Port.IntVal)
				}
			}
		}
		slices.Sort(out)
		if wantOut := kafkaEgress(t, name, want.egress); !slices.Equal(out, wantOut) {
			t.Errorf("%s: egress ports %v, want DNS and %v", name, out, wantOut)
		}
	}
}

// The alerts fire on the series that should fire them and stay quiet on
// healthy ones: promtool (Debian's prometheus package, installed by make
// test) runs testdata/alerts_test.yaml against the rules in the manifests.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: scripts/need.sh promtool=prometheus installs it (make test does)")
	}
	r := render(t, "prod")
	dir := t.TempDir()
	groups, err := sigsyaml.Marshal(map[string]any{"groups": r.rules[0].Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), groups, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert is tested and names its runbook entry.
	for _, g := range r.rules[0].Spec.Groups {
		for _, rule := range g.Rules {
			if !strings.Contains(string(tests), "alertname: "+rule.Alert+"\n") {
				t.Errorf("alert %s has no promtool test", rule.Alert)
			}
			anchor, ok := strings.CutPrefix(rule.Annotations["runbook"], "docs/operations.md#")
			if !ok {
				t.Errorf("alert %s names no runbook entry", rule.Alert)
				continue
			}
			doc, err := os.ReadFile(filepath.Join(testenv.Root(), "docs", "operations.md"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.ToLower(strings.ReplaceAll(string(doc), " ", "-")), "###-"+anchor) {
				t.Errorf("alert %s: docs/operations.md has no heading for #%s", rule.Alert, anchor)
			}
		}
	}
}

// checkTrustedProxies: behind an ingress, an empty TRUSTED_PROXIES puts
// every client in the ingress's one rate-limit bucket, and a range that
// covers everything lets any client name its own address. Each entry must
// parse as the service parses it (an address or a CIDR) and be a
// private range.
func checkTrustedProxies(t *testing.T, v string) {
	t.Helper()
	if strings.TrimSpace(v) == "" {
		t.Error("prod: TRUSTED_PROXIES is empty: behind the ingress every client shares one address")
		return
	}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				t.Errorf("prod: TRUSTED_PROXIES entry %q is neither an address nor a CIDR", e)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if !p.Addr().IsPrivate() || p.Bits() < 8 {
			t.Errorf("prod: TRUSTED_PROXIES entry %q is not a private range an ingress controller runs in", e)
		}
	}
}
