-- Serverless caches and their snapshots, global datastores, reserved cache nodes:
-- one row per resource keyed by (region, kind, name), settings as JSON in `spec`
-- (global datastores use the region '' since they span regions). Endpoints of
-- serverless caches live in `endpoints` (owner `serverless:<name>`) so no node
-- can take them.
CREATE TABLE api_resources (
    region     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    spec       TEXT    NOT NULL,
    PRIMARY KEY (region, kind, name)
);
