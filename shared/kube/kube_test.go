package kube_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"

	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/kube"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// clientFor finds the cluster through the GKE API fake, as the audit does.
func clientFor(t *testing.T, env backupfake.Env, ts oauth2.TokenSource) (*kube.Client, *backupfake.Server) {
	t.Helper()
	s := backupfake.Start(env)
	t.Cleanup(s.Close)
	g := gcpbackup.New(gcpbackup.Config{ContainerEndpoint: s.Container.URL, Attempts: 1})
	t.Cleanup(func() { _ = g.Close() })
	cl, err := g.Cluster(context.Background(), env.Clusters[0].Resource())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(cl.CACert), "-----BEGIN CERTIFICATE-----") || cl.Status != "RUNNING" {
		t.Fatalf("cluster: %+v", cl)
	}
	k, err := kube.New(kube.Config{Endpoint: cl.Endpoint, CACert: cl.CACert, TokenSource: ts, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

func TestFinishedPodsWithTokenAndCA(t *testing.T) {
	env := backupfake.Broken(now)
	env.Clusters[0].Token = "ya29.test-access-token"
	env.Clusters[0].PageSize = 10 // 89 leftovers: several pages per phase
	k, s := clientFor(t, env, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ya29.test-access-token"}))
	pods, err := k.FinishedPods(context.Background(), "mastodon", kube.PhaseFailed, kube.PhaseSucceeded)
	if err != nil {
		t.Fatal(err)
	}
	failed, succeeded := 0, 0
	for _, p := range pods {
		switch p.Phase {
		case kube.PhaseFailed:
			failed++
		case kube.PhaseSucceeded:
			succeeded++
		default:
			t.Errorf("pod %s in phase %s", p.Name, p.Phase)
		}
		if p.Namespace != "mastodon" || p.UID == "" || p.ResourceVersion == "" || p.Finished.IsZero() {
			t.Errorf("incomplete pod %+v", p)
		}
	}
	if failed != 29 || succeeded != 60 {
		t.Errorf("failed %d, succeeded %d; want 29 and 60", failed, succeeded)
	}
	if !pods[0].Finished.Before(pods[len(pods)-1].Finished) {
		t.Error("not oldest first")
	}
	var job bool
	for _, p := range pods {
		job = job || strings.HasPrefix(p.Owner, "Job/mastodon-media-remove-")
	}
	if !job {
		t.Error("no Job owner recorded")
	}
	pages := 0
	for _, r := range s.Requests() {
		if r.API == "kubernetes" {
			pages++
			if !r.Auth {
				t.Errorf("no bearer token on %s", r.Path)
			}
			if !strings.Contains(r.Query, "fieldSelector=status.phase%3D") {
				t.Errorf("no field selector: %s", r.Query)
			}
		}
	}
	if pages != 3+6 {
		t.Errorf("%d pages, want 9 (29 Failed and 60 Succeeded, 10 a page)", pages)
	}
}

func TestWrongTokenAndWrongCA(t *testing.T) {
	env := backupfake.Healthy(now)
	env.Clusters[0].Token = "right"
	k, _ := clientFor(t, env, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "wrong"}))
	_, err := k.FinishedPods(context.Background(), "mastodon", kube.PhaseFailed)
	var ke *kube.Error
	if !errors.As(err, &ke) || ke.Code != 401 {
		t.Errorf("wrong token: %v", err)
	}

	// A server whose certificate the cluster's CA did not sign is refused.
	other := httptest.NewUnstartedServer(http.NotFoundHandler())
	other.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	other.StartTLS()
	defer other.Close()
	s := backupfake.Start(backupfake.Healthy(now))
	defer s.Close()
	g := gcpbackup.New(gcpbackup.Config{ContainerEndpoint: s.Container.URL, Attempts: 1})
	defer g.Close()
	cl, err := g.Cluster(context.Background(), backupfake.ClusterName(backupfake.HealthyProject, backupfake.SampleLocation, backupfake.SampleCluster))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := kube.New(kube.Config{Endpoint: strings.TrimPrefix(other.URL, "https://"), CACert: cl.CACert, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.FinishedPods(context.Background(), "", kube.PhaseFailed); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a server outside the cluster's CA was trusted: %v", err)
	}
}

func TestForbiddenNamesThePermission(t *testing.T) {
	env := backupfake.Healthy(now)
	env.Clusters[0].ForbiddenList = []string{"*"}
	k, _ := clientFor(t, env, nil)
	_, err := k.FinishedPods(context.Background(), "", kube.PhaseFailed)
	var ke *kube.Error
	if !errors.As(err, &ke) || !ke.Forbidden || ke.Permission != "container.pods.list" || ke.Code != 403 ||
		!strings.Contains(ke.Error(), "at the cluster scope") {
		t.Errorf("%#v", err)
	}
}

// A server that ignores the field selector never gets a running pod reported (or deleted).
func TestServerIgnoringTheSelector(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running := backupfake.Pod("mastodon", "web", corev1.PodRunning, now, 0, "")
		failed := backupfake.Pod("mastodon", "job", corev1.PodFailed, now, time.Minute, "")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(corev1.PodList{Items: []corev1.Pod{running, failed}})
	}))
	defer srv.Close()
	ca := pemOf(srv)
	k, err := kube.New(kube.Config{Endpoint: strings.TrimPrefix(srv.URL, "https://"), CACert: ca})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := k.FinishedPods(context.Background(), "mastodon", kube.PhaseFailed)
	if err != nil || len(pods) != 1 || pods[0].Name != "job" {
		t.Errorf("%v %+v", err, pods)
	}
}

func TestDeletePreconditions(t *testing.T) {
	env := backupfake.Broken(now)
	k, s := clientFor(t, env, nil)
	pods, err := k.FinishedPods(context.Background(), "mastodon", kube.PhaseFailed)
	if err != nil || len(pods) == 0 {
		t.Fatal(err)
	}
	stale := pods[0]
	stale.ResourceVersion = "1"
	var ke *kube.Error
	if err := k.DeletePod(context.Background(), stale); !errors.As(err, &ke) || !ke.Conflict {
		t.Errorf("stale delete: %v", err)
	}
	if err := k.DeletePod(context.Background(), pods[0]); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := k.DeletePod(context.Background(), pods[0]); !errors.As(err, &ke) || !ke.NotFound {
		t.Errorf("delete again: %v", err)
	}
	if n := len(s.Pods(env.Clusters[0].Resource())); n != len(env.Clusters[0].Pods)-1 {
		t.Errorf("%d pods left", n)
	}
}

func pemOf(s *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// selfSigned makes a certificate for 127.0.0.1 that no cluster CA signed.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "impostor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
