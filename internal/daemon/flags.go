package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Flags are the flags every daemon shares. Set the fields to the daemon's
// defaults before Register: the values present then become the defaults.
type Flags struct {
	// ConfigFile is a YAML file whose keys are flag names (k3s style):
	// a value from the file applies to a flag not set on the command line.
	ConfigFile string
	LogLevel   string // debug, info, warn, error
	LogFormat  string // text or json
	// HTTPAddr serves /healthz, /readyz and /metrics; empty serves nothing.
	HTTPAddr string
}

// Register adds the shared flags to fs (a cobra command's Flags()).
func (f *Flags) Register(fs *pflag.FlagSet) {
	if f.LogLevel == "" {
		f.LogLevel = "info"
	}
	if f.LogFormat == "" {
		f.LogFormat = "text"
	}
	fs.StringVar(&f.ConfigFile, "config", f.ConfigFile, "YAML file of flag values (keys are flag names); flags given on the command line win")
	fs.StringVar(&f.LogLevel, "log-level", f.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "log-format", f.LogFormat, "log format: text or json")
	fs.StringVar(&f.HTTPAddr, "http-addr", f.HTTPAddr, "address serving /healthz, /readyz and /metrics (empty: none)")
}

// ApplyConfigFile sets every flag named in f.ConfigFile that was not given
// on the command line. Call it after fs is parsed. A key that names no flag
// is an error, so a typo never goes unnoticed.
func (f *Flags) ApplyConfigFile(fs *pflag.FlagSet) error {
	if f.ConfigFile == "" {
		return nil
	}
	data, err := os.ReadFile(f.ConfigFile)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	return applyConfig(fs, f.ConfigFile, data)
}

func applyConfig(fs *pflag.FlagSet, path string, data []byte) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	values := map[string]any{}
	if len(bytes.TrimSpace(js)) > 0 && string(bytes.TrimSpace(js)) != "null" {
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.UseNumber() // keep 1000000 from turning into 1e+06
		if err := dec.Decode(&values); err != nil {
			return fmt.Errorf("config file %s: must be a map of flag names to values: %w", path, err)
		}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		flag := fs.Lookup(key)
		if flag == nil || key == "config" {
			return fmt.Errorf("config file %s: unknown key %q: it names no flag", path, key)
		}
		if flag.Changed {
			continue // the command line wins
		}
		items, err := flagValues(values[key])
		if err != nil {
			return fmt.Errorf("config file %s: key %q: %w", path, key, err)
		}
		for _, v := range items {
			if err := fs.Set(key, v); err != nil {
				return fmt.Errorf("config file %s: key %q: %w", path, key, err)
			}
		}
	}
	return nil
}

// flagValues turns a YAML value into the strings to pass to Set: one for a
// scalar, one per item for a list (pflag's slice flags append on each Set
// after the first).
func flagValues(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string, bool, json.Number:
		return []string{fmt.Sprint(v)}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, item := range v {
			s, err := flagValues(item)
			if err != nil || len(s) != 1 {
				return nil, fmt.Errorf("list items must be scalars")
			}
			out = append(out, s[0])
		}
		return out, nil
	default:
		return nil, fmt.Errorf("value must be a scalar or a list of scalars")
	}
}
