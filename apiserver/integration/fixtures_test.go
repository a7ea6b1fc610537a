package integration

import (
	"github.com/skiff-dev/skiff/internal/client"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func meta(name, namespace string) *api.ObjectMeta {
	return &api.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": "web"}}
}

func podSpec() *api.PodSpec {
	return &api.PodSpec{Containers: []*api.Container{{Name: "web", Image: "nginx:1.25", Ports: []*api.ContainerPort{{ContainerPort: 80}}}}}
}

func template() *api.PodTemplateSpec {
	return &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: podSpec()}
}

// validObjects is one valid object of every kind, named name.
func validObjects(name string) []kinds.Object {
	two := int32(2)
	return []kinds.Object{
		&api.Namespace{Metadata: meta(name, "")},
		&api.Node{Metadata: meta(name, ""), Spec: &api.NodeSpec{PodCidr: "10.244.1.0/24"}},
		&api.Pod{Metadata: meta(name, "default"), Spec: podSpec()},
		&api.Service{Metadata: meta(name, "default"), Spec: &api.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []*api.ServicePort{{Port: 80, TargetPort: structpb.NewNumberValue(8080)}},
		}},
		&api.Endpoints{Metadata: meta(name, "default"), Subsets: []*api.EndpointSubset{{
			Addresses: []*api.EndpointAddress{{Ip: "10.244.1.5"}},
			Ports:     []*api.EndpointPort{{Port: 80}},
		}}},
		&api.Event{Metadata: meta(name, "default"), InvolvedObject: &api.ObjectReference{Kind: "Pod", Name: "web", Namespace: "default"}, Reason: "Tested", Message: "a test", Type: "Normal"},
		&api.ConfigMap{Metadata: meta(name, "default"), Data: map[string]string{"key": "value"}},
		&api.Secret{Metadata: meta(name, "default"), Data: map[string][]byte{"password": []byte("s3cret")}},
		&api.Deployment{Metadata: meta(name, "default"), Spec: &api.DeploymentSpec{
			Replicas: &two, Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template(),
		}},
		&api.ReplicaSet{Metadata: meta(name, "default"), Spec: &api.ReplicaSetSpec{
			Replicas: &two, Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template(),
		}},
		&api.Lease{Metadata: meta(name, "skiff-system"), Spec: &api.LeaseSpec{HolderIdentity: "me"}},
		&api.RoleBinding{Metadata: meta(name, ""), Subjects: []*api.Subject{{Kind: "User", Name: "alice"}}, RoleRef: &api.RoleRef{Name: "view"}},
	}
}

func clientListAll() client.ListOptions { return client.ListOptions{} }
