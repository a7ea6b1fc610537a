package pods

import "errors"

var (
	// ErrNoContainers: the pod or container has no run on this node.
	ErrNoContainers = errors.New("not found on this node")
	// ErrContainerNameRequired: the pod has several containers.
	ErrContainerNameRequired = errors.New("a container name must be specified")
)
