-- ElastiCache RBAC: users and user groups. The built-in `default` user is not
-- stored: it always exists. Status and memberships live in the JSON spec.
CREATE TABLE users (
    region     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    spec       TEXT    NOT NULL,
    PRIMARY KEY (region, name)
);

CREATE TABLE user_groups (
    region     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    spec       TEXT    NOT NULL,
    PRIMARY KEY (region, name)
);

-- Security groups, simulated: the ingress CIDRs of a VPC security group id as
-- set through the admin API (`PUT /_elastilite/security-groups/{id}`).
CREATE TABLE security_group_rules (
    id    TEXT NOT NULL PRIMARY KEY,
    cidrs TEXT NOT NULL
);

-- Legacy (EC2-Classic) cache security groups; the authorized EC2 security
-- groups live in the JSON spec.
CREATE TABLE cache_security_groups (
    region     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    spec       TEXT    NOT NULL,
    PRIMARY KEY (region, name)
);
