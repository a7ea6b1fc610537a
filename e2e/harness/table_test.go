package harness

import (
	"reflect"
	"testing"
)

func TestParseTable(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		columns []string
		rows    []map[string]string
	}{
		{
			name: "deployments",
			in: "NAME        READY   UP-TO-DATE   AVAILABLE   AGE\n" +
				"k8s-nginx   3/3     3            3           12s\n",
			columns: []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"},
			rows:    []map[string]string{{"NAME": "k8s-nginx", "READY": "3/3", "UP-TO-DATE": "3", "AVAILABLE": "3", "AGE": "12s"}},
		},
		{
			name: "wide pods: a header with one space, empty last cells",
			in: "NAME                        READY   STATUS    RESTARTS   AGE   IP            NODE     NOMINATED NODE   READINESS GATES\n" +
				"k8s-nginx-75f95db655-x2x7k  1/1     Running   0          1m    10.244.1.2    node-1   <none>           <none>\n" +
				"k8s-nginx-75f95db655-abcde  0/1     Pending   0          1s    <none>        <none>\n",
			columns: []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"},
			rows: []map[string]string{
				{"NAME": "k8s-nginx-75f95db655-x2x7k", "READY": "1/1", "STATUS": "Running", "RESTARTS": "0", "AGE": "1m",
					"IP": "10.244.1.2", "NODE": "node-1", "NOMINATED NODE": "<none>", "READINESS GATES": "<none>"},
				{"NAME": "k8s-nginx-75f95db655-abcde", "READY": "0/1", "STATUS": "Pending", "RESTARTS": "0", "AGE": "1s",
					"IP": "<none>", "NODE": "<none>", "NOMINATED NODE": "", "READINESS GATES": ""},
			},
		},
		{name: "nothing printed", in: "", columns: nil, rows: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTable(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Columns, tt.columns) {
				t.Errorf("columns = %q, want %q", got.Columns, tt.columns)
			}
			if !reflect.DeepEqual(got.Rows, tt.rows) {
				t.Errorf("rows = %q, want %q", got.Rows, tt.rows)
			}
		})
	}
}
