// Package e2e runs ctl end to end against a whole in-process control plane
// (apiserver on embedded etcd, controller-manager, scheduler, hollow
// nodes), the way a user runs the seed scenario.
//
// It holds only tests; it is kept apart from ctl/cmd so that ctl's own
// tests depend on the apiserver alone.
package e2e
