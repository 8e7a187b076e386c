-- Which blobs each manifest needs (view, rebuilt by replay): the config and
-- layers that a manifest.put recorded as held by its repository. A blob
-- listed here for a repository cannot be unlinked from it while the
-- manifest exists, so a pullable image never loses a layer.
CREATE TABLE manifest_blobs (
    repo   TEXT NOT NULL,
    digest TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (repo, digest, sha256)
);
CREATE INDEX manifest_blobs_by_blob ON manifest_blobs (repo, sha256);
