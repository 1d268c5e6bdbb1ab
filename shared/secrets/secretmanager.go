package secrets

import (
	"context"
	"fmt"
	"hash/crc32"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fediops/fediops/shared/domain"
)

// SecretManagerClient is the Secret Manager adapter: it reads secret versions and adds new ones.
type SecretManagerClient struct {
	c *secretmanager.Client
}

// NewSecretManager connects to Secret Manager with Application Default Credentials, or, when
// endpoint is set, to that gRPC endpoint ("host:port"). A loopback endpoint is used without
// TLS or authentication: that is how tests reach the in-process fake.
func NewSecretManager(ctx context.Context, endpoint string) (*SecretManagerClient, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
		if domain.IsLoopbackEndpoint(endpoint) {
			opts = append(opts, option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		}
	}
	c, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("secret manager client: %w", err)
	}
	return &SecretManagerClient{c: c}, nil
}

// Access reads a secret version ("projects/P/secrets/S/versions/V") and verifies its checksum.
func (s *SecretManagerClient) Access(ctx context.Context, name string) ([]byte, error) {
	resp, err := s.c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("access %s: %w", name, err)
	}
	data := resp.GetPayload().GetData()
	if sum := resp.GetPayload().DataCrc32C; sum != nil {
		if int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))) != *sum {
			return nil, fmt.Errorf("access %s: payload checksum mismatch", name)
		}
	}
	return data, nil
}

// AddVersion stores data as a new version of secret ("projects/P/secrets/S") and returns the
// new version's resource name.
func (s *SecretManagerClient) AddVersion(ctx context.Context, secret string, data []byte) (string, error) {
	sum := int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	v, err := s.c.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent:  secret,
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
	})
	if err != nil {
		return "", fmt.Errorf("add version to %s: %w", secret, err)
	}
	return v.GetName(), nil
}

// Close releases the connection.
func (s *SecretManagerClient) Close() error { return s.c.Close() }
