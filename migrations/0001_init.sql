-- Cache clusters, their nodes, and tags. Everything is scoped by region; the
-- settings a cluster was created or modified with live in `spec` (JSON) so that
-- adding a recorded field needs no migration.
CREATE TABLE cache_clusters (
    region               TEXT    NOT NULL,
    cache_cluster_id     TEXT    NOT NULL,
    replication_group_id TEXT,
    status               TEXT    NOT NULL,
    created_ms           INTEGER NOT NULL,
    spec                 TEXT    NOT NULL,
    PRIMARY KEY (region, cache_cluster_id)
);

CREATE TABLE cache_nodes (
    region            TEXT    NOT NULL,
    cache_cluster_id  TEXT    NOT NULL,
    cache_node_id     INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    bind_ip           TEXT    NOT NULL,
    port              INTEGER NOT NULL,
    availability_zone TEXT    NOT NULL,
    created_ms        INTEGER NOT NULL,
    PRIMARY KEY (region, cache_cluster_id, cache_node_id),
    UNIQUE (bind_ip, port),
    FOREIGN KEY (region, cache_cluster_id)
        REFERENCES cache_clusters (region, cache_cluster_id) ON DELETE CASCADE
);

CREATE TABLE tags (
    arn   TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (arn, key)
);
