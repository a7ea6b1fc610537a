package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

// binaryContent is not valid UTF-8, so a ConfigMap carries it in
// binaryData.
const binaryContent = "\xff\xfe\x00\x01png"

// configSourceDir lays out what the create tests read: a directory with
// two text files, a binary one, a subdirectory and a symlink (the last two
// skipped), a lone file, an env file and a file whose name is no valid key.
func configSourceDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(filepath.Join(conf, "nested"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, conf, "app.properties", "color=blue\n")
	writeFile(t, conf, "ui.ini", "[ui]\ntheme=dark\n")
	writeFile(t, conf, "logo.png", binaryContent)
	writeFile(t, filepath.Join(conf, "nested"), "deep.txt", "never read")
	if err := os.Symlink(filepath.Join(conf, "ui.ini"), filepath.Join(conf, "link.ini")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "game.properties", "enemies=aliens\nlives=3\n")
	writeFile(t, dir, "app.env", "\xEF\xBB\xBF# settings\n\n  ENEMIES=aliens\nlives=3\nQUOTED=\"true\"\nEMPTY=\nFROM_ENV\nUNSET\n")
	writeFile(t, dir, "bad name.txt", "x")
	writeFile(t, dir, "dup.env", "A=1\nA=2\n")
	writeFile(t, dir, "badkey.env", "GOOD=1\n1BAD=2\n")
	return dir
}

// runIn runs ctl in dir (relative --from-file paths) with FROM_ENV=from-env
// in its environment.
func (e *env) runIn(dir string, args ...string) result {
	e.t.Helper()
	f := e.factory()
	f.Getenv = func(k string) string {
		if k == "FROM_ENV" {
			return "from-env"
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	expanded := make([]string, len(args))
	for i, a := range args {
		expanded[i] = strings.ReplaceAll(a, "$DIR", dir)
	}
	var out, errOut syncBuffer
	code := Execute(ctx, expanded, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, f)
	return result{out: out.String(), err: errOut.String(), code: code}
}

func TestCreateConfigMapFromEveryFlagForm(t *testing.T) {
	e := newEnv(t)
	dir := configSourceDir(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		args   []string
		data   map[string]string
		binary map[string][]byte
	}{
		{"literals", []string{"--from-literal=key1=config1", "--from-literal", "key2=a=b=c", "--from-literal=empty=", "--from-literal=comma=x,y"},
			map[string]string{"key1": "config1", "key2": "a=b=c", "empty": "", "comma": "x,y"}, nil},
		{"file-keyed-by-base-name", []string{"--from-file=$DIR/game.properties"},
			map[string]string{"game.properties": "enemies=aliens\nlives=3\n"}, nil},
		{"file-with-key", []string{"--from-file=game=$DIR/game.properties"},
			map[string]string{"game": "enemies=aliens\nlives=3\n"}, nil},
		{"files-comma-separated", []string{"--from-file=g1=$DIR/game.properties,g2=$DIR/conf/ui.ini"},
			map[string]string{"g1": "enemies=aliens\nlives=3\n", "g2": "[ui]\ntheme=dark\n"}, nil},
		{"directory-regular-files-only", []string{"--from-file=$DIR/conf"},
			map[string]string{"app.properties": "color=blue\n", "ui.ini": "[ui]\ntheme=dark\n"},
			map[string][]byte{"logo.png": []byte(binaryContent)}},
		{"binary-file-with-key", []string{"--from-file=logo=$DIR/conf/logo.png", "--from-literal=k=v"},
			map[string]string{"k": "v"}, map[string][]byte{"logo": []byte(binaryContent)}},
		{"env-file", []string{"--from-env-file=$DIR/app.env"},
			map[string]string{"ENEMIES": "aliens", "lives": "3", "QUOTED": `"true"`, "EMPTY": "", "FROM_ENV": "from-env", "UNSET": ""}, nil},
		{"empty", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, "_", "-")
			args := append([]string{"create", "configmap", name}, tc.args...)
			r := e.runIn(dir, args...)
			if r.code != 0 || r.out != "configmap/"+name+" created\n" {
				t.Fatalf("ctl %s: %+v", strings.Join(args, " "), r)
			}
			cm, err := client.For[*api.ConfigMap](e.client()).Get(ctx, "default", name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.data, cm.GetData(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.binary, cm.GetBinaryData(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("binaryData (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateSecretGenericSendsDataBytes(t *testing.T) {
	e := newEnv(t)
	dir := configSourceDir(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		args     []string
		wantType string
		data     map[string][]byte
	}{
		{"literals", []string{"--from-literal=user=admin", "--from-literal=password=s3=cr=t"}, "Opaque",
			map[string][]byte{"user": []byte("admin"), "password": []byte("s3=cr=t")}},
		{"directory", []string{"--from-file=$DIR/conf"}, "Opaque",
			map[string][]byte{"app.properties": []byte("color=blue\n"), "ui.ini": []byte("[ui]\ntheme=dark\n"), "logo.png": []byte(binaryContent)}},
		{"keyed-file-and-type", []string{"--from-file=ssh-privatekey=$DIR/conf/logo.png", "--type=kubernetes.io/ssh-auth"}, "kubernetes.io/ssh-auth",
			map[string][]byte{"ssh-privatekey": []byte(binaryContent)}},
		{"env-file", []string{"--from-env-file=$DIR/game.properties"}, "Opaque",
			map[string][]byte{"enemies": []byte("aliens"), "lives": []byte("3")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"create", "secret", "generic", tc.name}, tc.args...)
			r := e.runIn(dir, args...)
			if r.code != 0 || r.out != "secret/"+tc.name+" created\n" {
				t.Fatalf("ctl %s: %+v", strings.Join(args, " "), r)
			}
			sec, err := client.For[*api.Secret](e.client()).Get(ctx, "default", tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if sec.GetType() != tc.wantType || len(sec.GetStringData()) != 0 {
				t.Errorf("type %q stringData %v, want type %q and no stringData", sec.GetType(), sec.GetStringData(), tc.wantType)
			}
			if diff := cmp.Diff(tc.data, sec.GetData()); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCreateConfigDataErrorsCreateNothing protects the client-side checks:
// each error names the flag and the key, and nothing reaches the cluster.
func TestCreateConfigDataErrorsCreateNothing(t *testing.T) {
	e := newEnv(t)
	dir := configSourceDir(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"literal-without-value", []string{"--from-literal=novalue"}, `--from-literal "novalue": invalid literal source novalue, expected key=value`},
		{"literal-without-key", []string{"--from-literal==v"}, `--from-literal "=v": invalid literal source =v, expected key=value`},
		{"bad-literal-key", []string{"--from-literal=a b=c"}, `--from-literal "a b=c": "a b" is not a valid key name for a ConfigMap: a valid config key must consist of alphanumeric characters`},
		{"dot-dot-key", []string{"--from-literal=..=c"}, `--from-literal "..=c": ".." is not a valid key name for a ConfigMap: must not be '..'`},
		{"bad-file-name-key", []string{"--from-file=$DIR/bad name.txt"}, `--from-file "$DIR/bad name.txt": "bad name.txt" is not a valid key name`},
		{"bad-file-key", []string{"--from-file=a/b=$DIR/game.properties"}, `--from-file "a/b=$DIR/game.properties": "a/b" is not a valid key name`},
		{"duplicate-file-and-literal", []string{"--from-file=x=$DIR/game.properties", "--from-literal=x=1"},
			`duplicate key "x" from --from-file "x=$DIR/game.properties" and --from-literal "x=1"`},
		{"duplicate-literals", []string{"--from-literal=x=1", "--from-literal=x=2"}, `duplicate key "x" from --from-literal "x=1" and --from-literal "x=2"`},
		{"duplicate-directory-and-file", []string{"--from-file=$DIR/conf", "--from-file=ui.ini=$DIR/game.properties"},
			`duplicate key "ui.ini" from --from-file "$DIR/conf" (file $DIR/conf/ui.ini) and --from-file "ui.ini=$DIR/game.properties"`},
		{"duplicate-in-env-file", []string{"--from-env-file=$DIR/dup.env"}, `duplicate key "A" from --from-env-file "$DIR/dup.env" line 1 and --from-env-file "$DIR/dup.env" line 2`},
		{"env-file-bad-key", []string{"--from-env-file=$DIR/badkey.env"}, `--from-env-file "$DIR/badkey.env" line 2: "1BAD" is not a valid key name: a valid environment variable name must consist of`},
		{"env-file-is-directory", []string{"--from-env-file=$DIR/conf"}, `--from-env-file "$DIR/conf": env config file cannot be a directory`},
		{"env-file-with-literal", []string{"--from-env-file=$DIR/app.env", "--from-literal=a=b"}, "from-env-file cannot be combined with from-file or from-literal"},
		{"missing-file", []string{"--from-file=$DIR/nope"}, `--from-file "$DIR/nope": stat $DIR/nope: no such file or directory`},
		{"key-for-directory", []string{"--from-file=k=$DIR/conf"}, `--from-file "k=$DIR/conf": cannot give a key name for a directory path`},
		{"file-source-without-key", []string{"--from-file==$DIR/game.properties"}, "key name for file path " + "$DIR/game.properties missing"},
		{"file-source-two-equals", []string{"--from-file=a=b=c"}, `--from-file "a=b=c": key names or file paths cannot contain '='`},
		{"bad-dry-run", []string{"--from-literal=a=b", "--dry-run=maybe"}, `invalid dry-run value (maybe). Must be "none", "server", or "client"`},
		{"server-rejects-name", []string{"--from-literal=a=b"}, `The ConfigMap "Not_A_Name" is invalid: metadata.name: Invalid value: "Not_A_Name": a lowercase RFC 1123 subdomain`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "bad"
			if tc.name == "server-rejects-name" {
				name = "Not_A_Name"
			}
			for _, create := range [][]string{{"create", "configmap", name}, {"create", "secret", "generic", name}} {
				r := e.runIn(dir, append(create, tc.args...)...)
				want := strings.ReplaceAll(tc.want, "$DIR", dir)
				if create[1] == "secret" {
					want = strings.NewReplacer("for a ConfigMap", "for a Secret", "The ConfigMap", "The Secret").Replace(want)
				}
				if r.code == 0 || !strings.Contains(r.err, want) || r.out != "" {
					t.Errorf("ctl %s: code %d\nstdout %q\nstderr %q\nwant stderr containing %q", strings.Join(create, " "), r.code, r.out, r.err, want)
				}
			}
		})
	}
	ctx := context.Background()
	cms, _, err := client.For[*api.ConfigMap](e.client()).List(ctx, "", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secs, _, err := client.For[*api.Secret](e.client()).List(ctx, "", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms)+len(secs) != 0 {
		t.Errorf("failed creates left %d config maps and %d secrets", len(cms), len(secs))
	}
}

func TestCreateConfigDataDryRunAndOutput(t *testing.T) {
	e := newEnv(t)
	dir := configSourceDir(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		args []string
		want func(out string) bool
	}{
		{"client", []string{"create", "configmap", "c1", "--from-literal=a=b", "--dry-run=client"},
			func(out string) bool { return out == "configmap/c1 created (dry run)\n" }},
		{"client-bare-flag", []string{"create", "secret", "generic", "s1", "--from-literal=a=b", "--dry-run"},
			func(out string) bool { return out == "secret/s1 created (dry run)\n" }},
		{"server", []string{"create", "configmap", "c2", "--from-literal=a=b", "--dry-run=server"},
			func(out string) bool { return out == "configmap/c2 created (server dry run)\n" }},
		{"server-secret", []string{"create", "secret", "generic", "s2", "--from-literal=a=b", "--dry-run=server"},
			func(out string) bool { return out == "secret/s2 created (server dry run)\n" }},
		{"client-yaml-binary", []string{"create", "configmap", "c3", "--from-file=$DIR/conf/logo.png", "--from-literal=a=b", "--dry-run=client", "-o", "yaml"},
			func(out string) bool {
				return strings.Contains(out, "kind: ConfigMap\n") && strings.Contains(out, "binaryData:\n  logo.png: //4AAXBuZw==\n") &&
					strings.Contains(out, "data:\n  a: b\n") && strings.Contains(out, "namespace: default\n")
			}},
		{"server-json-secret", []string{"create", "secret", "generic", "s3", "--from-literal=password=hunter2", "--dry-run=server", "-o", "json"},
			func(out string) bool {
				return strings.Contains(out, `"password": "aHVudGVyMg=="`) && strings.Contains(out, `"type": "Opaque"`) && strings.Contains(out, `"uid": "`)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.runIn(dir, tc.args...)
			if r.code != 0 || !tc.want(r.out) {
				t.Errorf("ctl %s: code %d\nstdout:\n%s\nstderr: %s", strings.Join(tc.args, " "), r.code, r.out, r.err)
			}
		})
	}
	cms, _, _ := client.For[*api.ConfigMap](e.client()).List(ctx, "", client.ListOptions{})
	secs, _, _ := client.For[*api.Secret](e.client()).List(ctx, "", client.ListOptions{})
	if len(cms)+len(secs) != 0 {
		t.Errorf("dry runs created %d config maps and %d secrets", len(cms), len(secs))
	}

	// -o name and -n on a real create.
	e.ok("create", "namespace", "team")
	if got := e.ok("create", "configmap", "named", "--from-literal=a=b", "-o", "name", "-n", "team"); got != "configmap/named\n" {
		t.Errorf("-o name printed %q", got)
	}
	if got := e.ok("create", "secret", "generic", "named", "--from-literal=a=b", "-o", "name", "-n", "team"); got != "secret/named\n" {
		t.Errorf("-o name printed %q", got)
	}
	if _, err := client.For[*api.Secret](e.client()).Get(ctx, "team", "named"); err != nil {
		t.Errorf("secret in -n team: %v", err)
	}
	if got := e.fails("create", "configmap", "named", "--from-literal=a=b", "-n", "team"); !strings.Contains(got, `configmaps "named" already exists`) {
		t.Errorf("second create: %q", got)
	}
}

// TestGetAndDescribeConfigMapsAndSecrets protects kubectl's columns (DATA
// counts binaryData, and a Secret's stringData keys once) and that describe
// shows a secret's sizes, never its values.
func TestGetAndDescribeConfigMapsAndSecrets(t *testing.T) {
	e := newEnv(t)
	dir := configSourceDir(t)
	ctx := context.Background()
	// Ten days and an hour on, every age reads "10d" however long the creates take.
	e.setNow(time.Now().Add(241 * time.Hour))
	e.runIn(dir, "create", "configmap", "conf", "--from-file=$DIR/conf")
	e.runIn(dir, "create", "configmap", "empty")
	e.runIn(dir, "create", "secret", "generic", "db", "--from-literal=user=admin", "--from-literal=password=hunter2")
	e.runIn(dir, "create", "secret", "generic", "tls", "--from-file=tls.key=$DIR/conf/logo.png", "--type=kubernetes.io/tls")
	// stringData as a manifest may store it: its keys count once with data's.
	mixed := &api.Secret{Metadata: &api.ObjectMeta{Name: "mixed", Namespace: "default"}, Type: "Opaque",
		Data: map[string][]byte{"a": []byte("1")}, StringData: map[string]string{"a": "2", "b": "3"}}
	if _, err := client.For[*api.Secret](e.client()).Create(ctx, proto.Clone(mixed).(*api.Secret)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "configmaps"}, "NAME    DATA   AGE\nconf    3      10d\nempty   0      10d\n"},
		{[]string{"get", "cm", "conf"}, "NAME   DATA   AGE\nconf   3      10d\n"},
		{[]string{"get", "secrets"}, "NAME    TYPE                DATA   AGE\ndb      Opaque              2      10d\nmixed   Opaque              2      10d\ntls     kubernetes.io/tls   1      10d\n"},
	} {
		if got := e.ok(tc.args...); got != tc.want {
			t.Errorf("ctl %s:\n%s\nwant\n%s", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	desc := e.ok("describe", "secret", "db")
	for _, want := range []string{"Name:         db\n", "Type:  Opaque\n", "Data\n====\n", "password:  7 bytes\n", "user:      5 bytes\n"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe secret lacks %q:\n%s", want, desc)
		}
	}
	if strings.Contains(desc, "hunter2") || strings.Contains(desc, "aHVudGVyMg") || strings.Contains(desc, "admin") {
		t.Errorf("describe secret shows a value:\n%s", desc)
	}
	desc = e.ok("describe", "configmap", "conf")
	for _, want := range []string{"Data\n====\napp.properties:\n----\ncolor=blue\n\nui.ini:\n----\n[ui]\ntheme=dark\n\n", "BinaryData\n====\nlogo.png: 7 bytes\n"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe configmap lacks %q:\n%s", want, desc)
		}
	}
}
