-- Parameter groups (with only the values users set; defaults come from the
-- catalogue) and subnet groups. The built-in `default.<family>` parameter groups
-- and the `default` subnet group are not stored: they always exist.
CREATE TABLE cache_parameter_groups (
    region      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    family      TEXT    NOT NULL,
    description TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (region, name)
);

CREATE TABLE cache_parameters (
    region     TEXT NOT NULL,
    group_name TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (region, group_name, name),
    FOREIGN KEY (region, group_name)
        REFERENCES cache_parameter_groups (region, name) ON DELETE CASCADE
);

CREATE TABLE cache_subnet_groups (
    region      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    vpc_id      TEXT    NOT NULL,
    -- JSON array of {"id": "...", "zone": "..."}
    subnets     TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (region, name)
);
