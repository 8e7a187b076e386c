-- Which child manifests each index names (view, rebuilt by replay), as its
-- manifest.put recorded them. A child listed here cannot be deleted from
-- its repository while the index exists, so a pullable index never loses
-- a platform.
CREATE TABLE manifest_children (
    repo   TEXT NOT NULL,
    digest TEXT NOT NULL,
    child  TEXT NOT NULL,
    PRIMARY KEY (repo, digest, child)
);
CREATE INDEX manifest_children_by_child ON manifest_children (repo, child);
