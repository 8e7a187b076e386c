-- A btree entry must fit in a third of a page (about 2.7 KB), so the
-- (key, value) index refused a long, incompressible annotation value (a
-- signature bundle, say) with an error after the manifest's bytes were
-- stored. Keys are bounded (manifests.MaxAnnotationKey); values are
-- looked up only by equality, which a hash index serves at any length.
DROP INDEX manifest_annotations_by_key;
CREATE INDEX manifest_annotations_by_key ON manifest_annotations (key);
CREATE INDEX manifest_annotations_by_value ON manifest_annotations USING hash (value);
