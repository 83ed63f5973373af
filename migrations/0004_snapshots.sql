-- Snapshots: metadata here, the data as RDB files under <data-dir>/snapshots/.
CREATE TABLE snapshots (
    region     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    spec       TEXT    NOT NULL,
    PRIMARY KEY (region, name)
);
