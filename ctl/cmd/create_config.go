package cmd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// dataSources are the flags create configmap and create secret generic
// read keys from, as kubectl's: --from-literal=key=value (repeatable, never
// split on commas), --from-file=[key=]path (a directory gives each regular
// file in it, keyed by its name) and --from-env-file=path (KEY=VALUE lines).
type dataSources struct {
	literals []string
	files    []string
	envFiles []string
}

func (s *dataSources) addFlags(c *cobra.Command, kind string) {
	c.Flags().StringArrayVar(&s.literals, "from-literal", nil, "Specify a key and literal value to insert in "+kind+" (i.e. mykey=somevalue)")
	c.Flags().StringSliceVar(&s.files, "from-file", nil, "Key file can be specified using its file path, in which case file basename will be used as "+kind+" key, or optionally with a key and file path, in which case the given key will be used. Specifying a directory will iterate each named file in the directory whose basename is a valid "+kind+" key.")
	c.Flags().StringSliceVar(&s.envFiles, "from-env-file", nil, "Specify the path to a file to read lines of key=val pairs to create a "+kind+".")
}

// dataEntry is one key, its value and the flag it came from, so a
// duplicate can name both of its sources.
type dataEntry struct {
	key    string
	value  []byte
	source string // `--from-file "conf/"`
}

// collect reads every source in flag order (files, literals, env files, as
// kubectl) and checks each key with the apiserver's own rule
// (validation.IsConfigMapKey, which admission applies to ConfigMaps and
// Secrets alike). It reads everything before anything is sent, so an
// error creates nothing. getenv answers env file lines without a value.
func (s *dataSources) collect(kind string, getenv func(string) string) ([]dataEntry, error) {
	if len(s.envFiles) > 0 && (len(s.files) > 0 || len(s.literals) > 0) {
		return nil, errors.New("from-env-file cannot be combined with from-file or from-literal")
	}
	var entries []dataEntry
	seen := map[string]string{} // key → source
	add := func(source, key string, value []byte) error {
		if msgs := validation.IsConfigMapKey(key); len(msgs) > 0 {
			return fmt.Errorf("%s: %q is not a valid key name for a %s: %s", source, key, kind, strings.Join(msgs, ", "))
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("duplicate key %q from %s and %s", key, prev, source)
		}
		seen[key] = source
		entries = append(entries, dataEntry{key: key, value: value, source: source})
		return nil
	}
	for _, src := range s.files {
		if err := readFileSource(src, add); err != nil {
			return nil, err
		}
	}
	for _, src := range s.literals {
		source := fmt.Sprintf("--from-literal %q", src)
		key, value, err := parseLiteralSource(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if err := add(source, key, []byte(value)); err != nil {
			return nil, err
		}
	}
	for _, src := range s.envFiles {
		if err := readEnvFile(src, getenv, add); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// parseLiteralSource splits "key=value" at the first "=", so values may
// hold "=".
func parseLiteralSource(src string) (key, value string, err error) {
	key, value, ok := strings.Cut(src, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("invalid literal source %s, expected key=value", src)
	}
	return key, value, nil
}

// parseFileSource reads "[key=]path"; the key defaults to the path's base
// name.
func parseFileSource(src string) (key, file string, err error) {
	switch n := strings.Count(src, "="); {
	case n == 0:
		return path.Base(filepath.ToSlash(src)), src, nil
	case n > 1:
		return "", "", errors.New("key names or file paths cannot contain '='")
	case strings.HasPrefix(src, "="):
		return "", "", fmt.Errorf("key name for file path %s missing", strings.TrimPrefix(src, "="))
	case strings.HasSuffix(src, "="):
		return "", "", fmt.Errorf("file path for key name %s missing", strings.TrimSuffix(src, "="))
	}
	key, file, _ = strings.Cut(src, "=")
	return key, file, nil
}

// readFileSource adds one --from-file: a file under its key, or each
// regular file of a directory under its own name (subdirectories,
// symlinks and devices are skipped, as kubectl skips them).
func readFileSource(src string, add func(source, key string, value []byte) error) error {
	source := fmt.Sprintf("--from-file %q", src)
	key, file, err := parseFileSource(src)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	st, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if !st.IsDir() {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		return add(source, key, data)
	}
	if strings.Contains(src, "=") {
		return fmt.Errorf("%s: cannot give a key name for a directory path", source)
	}
	items, err := os.ReadDir(file)
	if err != nil {
		return fmt.Errorf("%s: list files: %w", source, err)
	}
	for _, item := range items {
		if !item.Type().IsRegular() {
			continue
		}
		p := filepath.Join(file, item.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		if err := add(fmt.Sprintf("--from-file %q (file %s)", src, p), item.Name(), data); err != nil {
			return err
		}
	}
	return nil
}

// utf8BOM may start an env file; it is not part of the first key.
const utf8BOM = "\xEF\xBB\xBF"

// readEnvFile adds the KEY=VALUE lines of one --from-env-file as kubectl
// reads them: leading white space trimmed, blank lines and "#" comments
// skipped, keys must be environment variable names, and a line with no "="
// takes its value from the environment.
func readEnvFile(file string, getenv func(string) string, add func(source, key string, value []byte) error) error {
	flag := fmt.Sprintf("--from-env-file %q", file)
	st, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%s: env config file cannot be a directory", flag)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for n := 1; sc.Scan(); n++ {
		source := fmt.Sprintf("%s line %d", flag, n)
		line := sc.Bytes()
		if !utf8.Valid(line) {
			return fmt.Errorf("%s: invalid UTF-8", source)
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte(utf8BOM))
		}
		line = bytes.TrimLeftFunc(line, unicode.IsSpace)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, value, hasValue := strings.Cut(string(line), "=")
		if msgs := validation.IsEnvVarName(key); len(msgs) > 0 {
			return fmt.Errorf("%s: %q is not a valid key name: %s", source, key, strings.Join(msgs, ", "))
		}
		if !hasValue {
			value = getenv(key)
		}
		if err := add(source, key, []byte(value)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}

// newConfigMap puts valid UTF-8 values in data and the rest in
// binaryData, as kubectl does.
func newConfigMap(name, ns string, entries []dataEntry) *api.ConfigMap {
	cm := &api.ConfigMap{Metadata: &api.ObjectMeta{Name: name, Namespace: ns}}
	for _, e := range entries {
		if utf8.Valid(e.value) {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[e.key] = string(e.value)
			continue
		}
		if cm.BinaryData == nil {
			cm.BinaryData = map[string][]byte{}
		}
		cm.BinaryData[e.key] = e.value
	}
	kinds.SetTypeMeta(cm)
	return cm
}

// newSecret puts every value in data as bytes (never stringData), as
// kubectl sends it.
func newSecret(name, ns, typ string, entries []dataEntry) *api.Secret {
	sec := &api.Secret{Metadata: &api.ObjectMeta{Name: name, Namespace: ns}, Type: typ}
	for _, e := range entries {
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[e.key] = e.value
	}
	kinds.SetTypeMeta(sec)
	return sec
}

// run is the RunE of a create subcommand that builds an object of kind
// from NAME and the data sources: everything is read and checked before
// anything is sent.
func (s *dataSources) run(streams IOStreams, f *Factory, o *generatedOptions, kind string,
	build func(name, ns string, entries []dataEntry) kinds.Object) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf(c, "exactly one NAME is required, got %d", len(args))
		}
		entries, err := s.collect(kind, f.getenv)
		if err != nil {
			return err
		}
		ns, _ := f.DefaultNamespace()
		return o.send(c.Context(), streams, f, build(args[0], ns, entries), "created")
	}
}

func newCreateConfigMapCmd(streams IOStreams, f *Factory) *cobra.Command {
	var src dataSources
	o := &generatedOptions{}
	c := &cobra.Command{
		Use:     "configmap NAME [--from-file=[key=]source] [--from-literal=key1=value1] [--from-env-file=source] [--dry-run=server|client|none]",
		Aliases: []string{"cm"},
		Short:   "Create a config map from a local file, directory or literal value",
		Long: `Create a config map based on a file, directory, or specified literal value.

A single config map may package one or more key/value pairs.

When creating a config map based on a file, the key will default to the basename
of the file, and the value will default to the file content. If the basename is
an invalid key, you may specify an alternate key.

When creating a config map based on a directory, each file whose basename is a
valid key in the directory will be packaged into the config map. Any directory
entries except regular files are ignored (e.g. subdirectories, symlinks, devices,
pipes, etc). Content that is not valid UTF-8 goes to binaryData.`,
		Example: `  # Create a new config map named my-config based on folder bar
  ctl create configmap my-config --from-file=path/to/bar

  # Create a new config map named my-config with specified keys instead of file basenames on disk
  ctl create configmap my-config --from-file=key1=/path/to/bar/file1.txt --from-file=key2=/path/to/bar/file2.txt

  # Create a new config map named my-config with key1=config1 and key2=config2
  ctl create configmap my-config --from-literal=key1=config1 --from-literal=key2=config2

  # Create a new config map named my-config from an env file
  ctl create configmap my-config --from-env-file=path/to/foo.env`,
		RunE: src.run(streams, f, o, "ConfigMap", func(name, ns string, entries []dataEntry) kinds.Object {
			return newConfigMap(name, ns, entries)
		}),
	}
	src.addFlags(c, "configmap")
	o.addFlags(c)
	return c
}

func newCreateSecretCmd(streams IOStreams, f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "secret",
		Short: "Create a secret using a specified subcommand",
		Example: `  # Create a new secret named my-secret with keys for each file in folder bar
  ctl create secret generic my-secret --from-file=path/to/bar`,
		RunE: func(c *cobra.Command, args []string) error {
			return subcommandRequired(c, args)
		},
	}
	c.AddCommand(newCreateSecretGenericCmd(streams, f))
	return c
}

func newCreateSecretGenericCmd(streams IOStreams, f *Factory) *cobra.Command {
	var src dataSources
	var typ string
	o := &generatedOptions{}
	c := &cobra.Command{
		Use:   "generic NAME [--type=string] [--from-file=[key=]source] [--from-literal=key1=value1] [--dry-run=server|client|none]",
		Short: "Create a secret from a local file, directory, or literal value",
		Long: `Create a secret based on a file, directory, or specified literal value.

A single secret may package one or more key/value pairs.

When creating a secret based on a file, the key will default to the basename of
the file, and the value will default to the file content. If the basename is an
invalid key or you wish to chose your own, you may specify an alternate key.

When creating a secret based on a directory, each file whose basename is a valid
key in the directory will be packaged into the secret. Any directory entries
except regular files are ignored (e.g. subdirectories, symlinks, devices, pipes,
etc).`,
		Example: `  # Create a new secret named my-secret with keys for each file in folder bar
  ctl create secret generic my-secret --from-file=path/to/bar

  # Create a new secret named my-secret with specified keys instead of names on disk
  ctl create secret generic my-secret --from-file=ssh-privatekey=path/to/id_rsa --from-file=ssh-publickey=path/to/id_rsa.pub

  # Create a new secret named my-secret with key1=supersecret and key2=topsecret
  ctl create secret generic my-secret --from-literal=key1=supersecret --from-literal=key2=topsecret

  # Create a new secret named my-secret from env files
  ctl create secret generic my-secret --from-env-file=path/to/foo.env --from-env-file=path/to/bar.env`,
		RunE: src.run(streams, f, o, "Secret", func(name, ns string, entries []dataEntry) kinds.Object {
			return newSecret(name, ns, typ, entries)
		}),
	}
	src.addFlags(c, "secret")
	c.Flags().StringVar(&typ, "type", "Opaque", "The type of secret to create")
	o.addFlags(c)
	return c
}
