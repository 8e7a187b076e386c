package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	blobs3 "github.com/artifact-store/artifact-store/blobstore/s3"
)

// s3Config is the S3 connection, from flags, ARTIFACTSTORE_S3_* or the
// usual AWS_* variables.
type s3Config struct {
	endpoint, region, accessKey, secretKey string
	pathStyle                              bool
}

func storageFlags(fs *flag.FlagSet, c *storeConfig) {
	fs.StringVar(&c.storage, "storage", env("ARTIFACTSTORE_STORAGE", ""), "where blobs live: empty for DATA/blobs, or s3://BUCKET/PREFIX (env ARTIFACTSTORE_STORAGE)")
	fs.BoolVar(&c.buffered, "buffered-blobs", envBool("ARTIFACTSTORE_BUFFERED_BLOBS"), "write and serve every blob in the data directory through the kernel's page cache, instead of with direct I/O past its first 32MiB: for slow disks, or many clients pulling the same large blobs; pushes then pay a copy per byte (env ARTIFACTSTORE_BUFFERED_BLOBS)")
	fs.StringVar(&c.coldStorage, "cold-storage", env("ARTIFACTSTORE_COLD_STORAGE", ""), "s3://BUCKET/PREFIX of the cold tier, which enables retrieval tiering (env ARTIFACTSTORE_COLD_STORAGE)")
	fs.StringVar(&c.s3.endpoint, "s3-endpoint", env("ARTIFACTSTORE_S3_ENDPOINT", env("AWS_ENDPOINT_URL_S3", env("AWS_ENDPOINT_URL", "https://s3.amazonaws.com"))), "S3 endpoint URL, http:// or https:// (env ARTIFACTSTORE_S3_ENDPOINT, AWS_ENDPOINT_URL_S3)")
	fs.StringVar(&c.s3.region, "s3-region", env("ARTIFACTSTORE_S3_REGION", env("AWS_REGION", env("AWS_DEFAULT_REGION", "us-east-1"))), "S3 region (env ARTIFACTSTORE_S3_REGION, AWS_REGION)")
	// Credentials default from the environment after parsing, so that -h
	// never prints them.
	fs.StringVar(&c.s3.accessKey, "s3-access-key", "", "S3 access key (env ARTIFACTSTORE_S3_ACCESS_KEY, AWS_ACCESS_KEY_ID)")
	fs.StringVar(&c.s3.secretKey, "s3-secret-key", "", "S3 secret key (env ARTIFACTSTORE_S3_SECRET_KEY, AWS_SECRET_ACCESS_KEY)")
	fs.BoolVar(&c.s3.pathStyle, "s3-path-style", envBool("ARTIFACTSTORE_S3_PATH_STYLE"), "path-style requests (MinIO, Ceph, gateways) instead of virtual-host style (env ARTIFACTSTORE_S3_PATH_STYLE)")
}

// openBackend opens the blob backend the configuration names.
func openBackend(ctx context.Context, c *storeConfig) (blobstore.Backend, error) {
	if c.storage == "" || c.storage == "file" {
		return blobfs.NewWithOptions(filepath.Join(c.data, "blobs"), blobfs.Options{Buffered: c.buffered})
	}
	return openS3(ctx, c, "--storage", c.storage)
}

// openCold opens the cold tier, or returns nil when there is none.
func openCold(ctx context.Context, c *storeConfig) (*blobstore.Store, error) {
	if c.coldStorage == "" {
		return nil, nil
	}
	b, err := openS3(ctx, c, "--cold-storage", c.coldStorage)
	if err != nil {
		return nil, err
	}
	return blobstore.New(b), nil
}

func openS3(ctx context.Context, c *storeConfig, flagName, storage string) (blobstore.Backend, error) {
	if c.s3.accessKey == "" {
		c.s3.accessKey = env("ARTIFACTSTORE_S3_ACCESS_KEY", env("AWS_ACCESS_KEY_ID", ""))
	}
	if c.s3.secretKey == "" {
		c.s3.secretKey = env("ARTIFACTSTORE_S3_SECRET_KEY", env("AWS_SECRET_ACCESS_KEY", ""))
	}
	u, err := url.Parse(storage)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want s3://BUCKET/PREFIX", flagName, storage)
	}
	ep, err := url.Parse(c.s3.endpoint)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
		return nil, fmt.Errorf("--s3-endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]", c.s3.endpoint)
	}
	return blobs3.New(ctx, blobs3.Options{
		Endpoint: ep.Host, Secure: ep.Scheme == "https", Region: c.s3.region,
		AccessKey: c.s3.accessKey, SecretKey: c.s3.secretKey,
		Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), PathStyle: c.s3.pathStyle,
	})
}
