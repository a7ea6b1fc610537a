// Package controllerutil holds what every controller of the
// controller-manager shares: the work-queue worker loop, queue and sync
// metrics, expectations, ownerReference helpers and pod state predicates.
//
// It must never talk to the apiserver on its own or keep package-level
// state: controllers own their clients, queues and caches.
package controllerutil
