package selectors

import (
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func labelsSet(m map[string]string) labels.Set { return labels.Set(m) }
