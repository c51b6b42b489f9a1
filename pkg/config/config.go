// Package config loads a service's settings from environment variables.
//
// A settings struct declares each field once with struct tags:
//
//	type Config struct {
//		Addr string        `env:"ADDR" default:":8080" help:"listen address"`
//		URL  string        `env:"DATABASE_URL" secret:"true" help:"PostgreSQL URL"`
//		Wait time.Duration `env:"WAIT" default:"2s"`
//	}
//
// Nested structs are walked, so a service can embed shared groups of
// settings (HTTP, Kafka, database) next to its own.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ErrHelp is returned by Load when the arguments ask for help; the usage
// has already been printed.
var ErrHelp = errors.New("help requested")

// Load fills dst (a pointer to a struct) from the environment. Fields
// without a value (unset or empty) take their `default` tag. When args
// contain -h, -help or --help, Load prints every setting to out and returns
// ErrHelp.
func Load(dst any, args []string, out io.Writer) error {
	fields, err := walk(reflect.ValueOf(dst))
	if err != nil {
		return err
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			usage(out, fields)
			return ErrHelp
		}
	}
	var errs []error
	for _, f := range fields {
		// Set but empty counts as unset: make and compose export empty
		// variables for settings nobody gave.
		raw := os.Getenv(f.env)
		if raw == "" {
			raw = f.def
		}
		if err := set(f.value, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", f.env, raw, err))
		}
	}
	return errors.Join(errs...)
}

// Override sets the named settings of dst (already loaded) to the given
// raw values, as if they were in the environment; an unknown name or a
// bad value is an error that names the setting and lists the known ones.
func Override(dst any, values map[string]string) error {
	fields, err := walk(reflect.ValueOf(dst))
	if err != nil {
		return err
	}
	byName := make(map[string]field, len(fields))
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		byName[f.env] = f
		names = append(names, f.env)
	}
	var errs []error
	for k, raw := range values {
		f, ok := byName[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: not a setting here (want one of %s)", k, strings.Join(names, ", ")))
			continue
		}
		if err := set(f.value, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", k, raw, err))
		}
	}
	return errors.Join(errs...)
}

// Describe renders the loaded settings as key=value pairs with secrets
// masked, for the start-up log line.
func Describe(src any) map[string]string {
	v := reflect.ValueOf(src)
	if v.Kind() != reflect.Pointer {
		cp := reflect.New(v.Type())
		cp.Elem().Set(v)
		v = cp
	}
	fields, err := walk(v)
	if err != nil {
		return nil
	}
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		v := fmt.Sprint(f.value.Interface())
		if f.secret {
			v = mask(v)
		}
		out[f.env] = v
	}
	return out
}

type field struct {
	env, def, help string
	secret         bool
	value          reflect.Value
}

func walk(v reflect.Value) ([]field, error) {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: want a struct, got %s", v.Kind())
	}
	var out []field
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf, fv := t.Field(i), v.Field(i)
		if !sf.IsExported() {
			continue
		}
		env := sf.Tag.Get("env")
		if env == "" && fv.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(time.Time{}) {
			inner, err := walk(fv.Addr())
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
			continue
		}
		if env == "" {
			continue
		}
		out = append(out, field{
			env: env, def: sf.Tag.Get("default"), help: sf.Tag.Get("help"),
			secret: sf.Tag.Get("secret") == "true", value: fv,
		})
	}
	return out, nil
}

func set(v reflect.Value, raw string) error {
	switch v.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	case []string:
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean")
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func usage(out io.Writer, fields []field) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tDESCRIPTION")
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.env, f.def, f.help)
	}
	tw.Flush()
}

// mask hides the password of a URL, or the whole value when it is not one.
func mask(v string) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		return "***"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}
