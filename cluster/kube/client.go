package kube

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// InCluster is the Kubernetes setting that uses the pod's service account.
const InCluster = "in-cluster"

// Client connects to the API server: from inside a pod (InCluster) or with
// a kubeconfig file.
func Client(where string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if where == InCluster {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", where)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes %s: %w", where, err)
	}
	return kubernetes.NewForConfig(cfg)
}
