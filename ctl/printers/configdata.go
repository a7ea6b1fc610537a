package printers

import (
	"fmt"
	"io"
	"sort"

	"github.com/skiff-dev/skiff/proto/api"
)

// secretKeys are a Secret's keys, sorted (the apiserver folds stringData
// into data on write).
func secretKeys(s *api.Secret) []string {
	keys := make([]string, 0, len(s.GetData()))
	for k := range s.GetData() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describeConfigMap is kubectl's: each data value in full under its key,
// binaryData as sizes. Values go to out verbatim, past the tab writer,
// which would otherwise align the tabs inside them.
func describeConfigMap(w *describeWriter, out io.Writer, cm *api.ConfigMap) {
	w.meta(cm.GetMetadata(), true)
	w.labelsAndAnnotations(cm.GetMetadata())
	w.flush()
	fmt.Fprint(out, "\nData\n====\n")
	for _, k := range sortedKeys(cm.GetData()) {
		fmt.Fprintf(out, "%s:\n----\n%s\n", k, cm.GetData()[k])
	}
	fmt.Fprint(out, "\nBinaryData\n====\n")
	bin := make([]string, 0, len(cm.GetBinaryData()))
	for k := range cm.GetBinaryData() {
		bin = append(bin, k)
	}
	sort.Strings(bin)
	for _, k := range bin {
		fmt.Fprintf(out, "%s: %d bytes\n", k, len(cm.GetBinaryData()[k]))
	}
	fmt.Fprintln(out)
}

// describeSecret is kubectl's: the type and each key's size, never a
// value.
func describeSecret(w *describeWriter, s *api.Secret) {
	w.meta(s.GetMetadata(), true)
	w.labelsAndAnnotations(s.GetMetadata())
	w.line(0, "")
	w.line(0, "Type:\t%s", s.GetType())
	w.line(0, "")
	w.line(0, "Data")
	w.line(0, "====")
	for _, k := range secretKeys(s) {
		w.line(0, "%s:\t%d bytes", k, len(s.GetData()[k]))
	}
}
