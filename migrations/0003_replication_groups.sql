-- Replication groups (their members are rows of cache_clusters with
-- replication_group_id set), the endpoints that belong to a resource rather than
-- to a node (a group's primary and reader endpoints), and events.
CREATE TABLE replication_groups (
    region               TEXT    NOT NULL,
    replication_group_id TEXT    NOT NULL,
    status               TEXT    NOT NULL,
    created_ms           INTEGER NOT NULL,
    spec                 TEXT    NOT NULL,
    PRIMARY KEY (region, replication_group_id)
);

CREATE TABLE endpoints (
    region  TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    bind_ip TEXT    NOT NULL,
    port    INTEGER NOT NULL,
    PRIMARY KEY (region, owner, kind),
    UNIQUE (bind_ip, port)
);

CREATE TABLE events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    region            TEXT    NOT NULL,
    source_identifier TEXT    NOT NULL,
    source_type       TEXT    NOT NULL,
    message           TEXT    NOT NULL,
    date_ms           INTEGER NOT NULL
);
CREATE INDEX events_by_region_date ON events (region, date_ms);
