package config

import (
	"bytes"
	"errors"
	"io"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

type inner struct {
	URL string `env:"CFG_TEST_URL" default:"postgres://u:secret@h/db" secret:"true" help:"database"`
}

type settings struct {
	Addr    string        `env:"CFG_TEST_ADDR" default:":8080" help:"listen address"`
	Wait    time.Duration `env:"CFG_TEST_WAIT" default:"2s"`
	Rate    float64       `env:"CFG_TEST_RATE" default:"1.5"`
	N       int           `env:"CFG_TEST_N" default:"3"`
	On      bool          `env:"CFG_TEST_ON" default:"false"`
	List    []string      `env:"CFG_TEST_LIST" default:"a, b"`
	Inner   inner
	ignored string
}

func TestLoad(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		check   func(settings) bool
		wantErr string
	}{
		{"defaults", nil, func(s settings) bool {
			return s.Addr == ":8080" && s.Wait == 2*time.Second && s.Rate == 1.5 && s.N == 3 && !s.On &&
				len(s.List) == 2 && s.List[1] == "b" && s.Inner.URL == "postgres://u:secret@h/db"
		}, ""},
		{"overrides", map[string]string{"CFG_TEST_ADDR": ":9", "CFG_TEST_WAIT": "5ms", "CFG_TEST_N": "7", "CFG_TEST_ON": "true", "CFG_TEST_URL": "x"},
			func(s settings) bool {
				return s.Addr == ":9" && s.Wait == 5*time.Millisecond && s.N == 7 && s.On && s.Inner.URL == "x"
			}, ""},
		{"empty means default", map[string]string{"CFG_TEST_WAIT": "", "CFG_TEST_ADDR": ""},
			func(s settings) bool { return s.Wait == 2*time.Second && s.Addr == ":8080" }, ""},
		{"bad duration", map[string]string{"CFG_TEST_WAIT": "soon"}, nil, "CFG_TEST_WAIT"},
		{"bad int", map[string]string{"CFG_TEST_N": "3.5"}, nil, "CFG_TEST_N"},
		{"bad bool", map[string]string{"CFG_TEST_ON": "maybe"}, nil, "CFG_TEST_ON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var s settings
			err := Load(&s, nil, nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil || !c.check(s) {
				t.Fatalf("Load = %+v, %v", s, err)
			}
		})
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var s settings
	var out bytes.Buffer
	if err := Load(&s, []string{"--help"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, name := range []string{"CFG_TEST_ADDR", "CFG_TEST_WAIT", "CFG_TEST_URL", "listen address"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("help lacks %s:\n%s", name, out.String())
		}
	}
}

func TestDescribeMasksSecrets(t *testing.T) {
	var s settings
	if err := Load(&s, nil, nil); err != nil {
		t.Fatal(err)
	}
	d := Describe(s)
	if strings.Contains(d["CFG_TEST_URL"], "secret") || d["CFG_TEST_ADDR"] != ":8080" {
		t.Fatalf("Describe = %v", d)
	}
}

func TestOverride(t *testing.T) {
	var s settings
	if err := Load(&s, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := Override(&s, map[string]string{"CFG_TEST_WAIT": "7s"}); err != nil || s.Wait != 7*time.Second {
		t.Fatalf("Override = %v, wait %s", err, s.Wait)
	}
	err := Override(&s, map[string]string{"CFG_TEST_NOPE": "1"})
	if err == nil || !strings.Contains(err.Error(), "CFG_TEST_NOPE: not a setting here") || !strings.Contains(err.Error(), "CFG_TEST_WAIT") {
		t.Fatalf("unknown setting: %v", err)
	}
	if err := Override(&s, map[string]string{"CFG_TEST_WAIT": "soon"}); err == nil || !strings.Contains(err.Error(), `CFG_TEST_WAIT="soon"`) {
		t.Fatalf("bad value: %v", err)
	}
}

func TestTuneMemory(t *testing.T) {
	defer debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("MEMORY_LIMIT_BYTES", "1073741824")
	if got := TuneMemory(); got != 966367638 || debug.SetMemoryLimit(-1) != 966367638 {
		t.Fatalf("1 GiB limit: soft limit %d, runtime %d; want 90%%", got, debug.SetMemoryLimit(-1))
	}
	t.Setenv("GOMEMLIMIT", "500MiB")
	if got := TuneMemory(); got != 0 {
		t.Fatalf("GOMEMLIMIT set: TuneMemory must leave it, set %d", got)
	}
}
