package backupaudit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/kube"
)

// clusterPods implements Pods: it finds each cluster's endpoint and CA with the GKE API
// (clusters.get) and talks to its Kubernetes API with the function's own Google credentials.
type clusterPods struct {
	c       *gcpbackup.Client
	timeout time.Duration

	mu      sync.Mutex
	ts      oauth2.TokenSource
	clients map[string]*kube.Client
}

// cloudPlatformScope is the OAuth2 scope GKE accepts for its Kubernetes API.
const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

func (p *clusterPods) client(ctx context.Context, cluster string) (*kube.Client, error) {
	p.mu.Lock()
	if k := p.clients[cluster]; k != nil {
		p.mu.Unlock()
		return k, nil
	}
	p.mu.Unlock()
	cl, err := p.c.Cluster(ctx, cluster)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var ts oauth2.TokenSource
	if !p.c.ContainerUnauthenticated() {
		if p.ts == nil {
			src, err := google.DefaultTokenSource(context.WithoutCancel(ctx), cloudPlatformScope)
			if err != nil {
				return nil, &gcpbackup.Error{API: gcpbackup.APIContainer, Op: "credentials", Resource: cluster, Kind: gcpbackup.KindSetup, Message: err.Error(), Err: err}
			}
			p.ts = oauth2.ReuseTokenSource(nil, src)
		}
		ts = p.ts
	}
	k, err := kube.New(kube.Config{Endpoint: cl.Endpoint, CACert: cl.CACert, TokenSource: ts, Timeout: p.timeout})
	if err != nil {
		return nil, &gcpbackup.Error{API: gcpbackup.APIContainer, Op: "clusters.get", Resource: cluster, Kind: gcpbackup.KindMalformed, Message: err.Error(), Err: err}
	}
	if p.clients == nil {
		p.clients = map[string]*kube.Client{}
	}
	p.clients[cluster] = k
	return k, nil
}

func (p *clusterPods) FinishedPods(ctx context.Context, cluster, namespace string, phases ...string) ([]kube.Pod, error) {
	k, err := p.client(ctx, cluster)
	if err != nil {
		return nil, err
	}
	return k.FinishedPods(ctx, namespace, phases...)
}

func (p *clusterPods) DeletePod(ctx context.Context, cluster string, pod kube.Pod) error {
	k, err := p.client(ctx, cluster)
	if err != nil {
		return err
	}
	return k.DeletePod(ctx, pod)
}

// PodsFrom returns a Pods source reading clusters through c (each request bounded by
// timeout, default 30s).
func PodsFrom(c *gcpbackup.Client, timeout time.Duration) Pods {
	return &clusterPods{c: c, timeout: timeout}
}
