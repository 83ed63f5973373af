use super::*;

const BASE: &[&str] = &[
    "memcached1.4",
    "memcached1.5",
    "memcached1.6",
    "redis2.6",
    "redis2.8",
    "redis3.2",
    "redis4.0",
    "redis5.0",
    "redis6.x",
    "redis7",
    "valkey7",
    "valkey8",
];

const CLUSTER_ON: &[&str] = &[
    "redis3.2.cluster.on",
    "redis4.0.cluster.on",
    "redis5.0.cluster.on",
    "redis6.x.cluster.on",
    "redis7.cluster.on",
    "valkey7.cluster.on",
    "valkey8.cluster.on",
];

/// The control plane's NODE_TYPES (crates/control-plane/src/catalog.rs).
const NODE_TYPES: &[&str] = &[
    "cache.t2.micro",
    "cache.t2.small",
    "cache.t2.medium",
    "cache.t3.micro",
    "cache.t3.small",
    "cache.t3.medium",
    "cache.t4g.micro",
    "cache.t4g.small",
    "cache.t4g.medium",
    "cache.m4.large",
    "cache.m4.xlarge",
    "cache.m4.2xlarge",
    "cache.m4.4xlarge",
    "cache.m4.10xlarge",
    "cache.m5.large",
    "cache.m5.xlarge",
    "cache.m5.2xlarge",
    "cache.m5.4xlarge",
    "cache.m5.12xlarge",
    "cache.m5.24xlarge",
    "cache.m6g.large",
    "cache.m6g.xlarge",
    "cache.m6g.2xlarge",
    "cache.m6g.4xlarge",
    "cache.m6g.8xlarge",
    "cache.m6g.12xlarge",
    "cache.m6g.16xlarge",
    "cache.m7g.large",
    "cache.m7g.xlarge",
    "cache.m7g.2xlarge",
    "cache.m7g.4xlarge",
    "cache.m7g.8xlarge",
    "cache.m7g.12xlarge",
    "cache.m7g.16xlarge",
    "cache.r4.large",
    "cache.r4.xlarge",
    "cache.r4.2xlarge",
    "cache.r4.4xlarge",
    "cache.r4.8xlarge",
    "cache.r4.16xlarge",
    "cache.r5.large",
    "cache.r5.xlarge",
    "cache.r5.2xlarge",
    "cache.r5.4xlarge",
    "cache.r5.12xlarge",
    "cache.r5.24xlarge",
    "cache.r6g.large",
    "cache.r6g.xlarge",
    "cache.r6g.2xlarge",
    "cache.r6g.4xlarge",
    "cache.r6g.8xlarge",
    "cache.r6g.12xlarge",
    "cache.r6g.16xlarge",
    "cache.r7g.large",
    "cache.r7g.xlarge",
    "cache.r7g.2xlarge",
    "cache.r7g.4xlarge",
    "cache.r7g.8xlarge",
    "cache.r7g.12xlarge",
    "cache.r7g.16xlarge",
];

fn fam(name: &str) -> &'static Family {
    family(name).unwrap_or_else(|| panic!("family {name} missing"))
}

fn par<'a>(f: &'a Family, name: &str) -> &'a ParamDef {
    f.param(name)
        .unwrap_or_else(|| panic!("{} has no {name}", f.name))
}

fn redis_like() -> impl Iterator<Item = &'static Family> {
    families().filter(|f| f.engine != "memcached")
}

#[test]
fn every_family_loads() {
    let names: Vec<&str> = families().map(|f| f.name.as_str()).collect();
    let expected: Vec<&str> = BASE.iter().chain(CLUSTER_ON).copied().collect();
    assert_eq!(names, expected);
    for f in families() {
        assert!(!f.params.is_empty(), "{}", f.name);
        assert!(!f.node_type_specific.is_empty(), "{}", f.name);
        assert!(
            ["redis", "valkey", "memcached"].contains(&f.engine.as_str()),
            "{}",
            f.name
        );
        let engine_prefix = f.name.starts_with(f.engine.as_str());
        assert!(engine_prefix, "{} engine {}", f.name, f.engine);
        // Sorted and unique, so `param` can binary-search.
        for w in f.params.windows(2) {
            assert!(
                w[0].name < w[1].name,
                "{}: {} / {}",
                f.name,
                w[0].name,
                w[1].name
            );
        }
        for p in &f.params {
            assert_eq!(f.param(&p.name), Some(p));
            assert_eq!(p.source, "system");
            assert!(!p.description.is_empty(), "{}/{}", f.name, p.name);
            assert!(
                p.minimum_engine_version.split('.').count() == 3,
                "{}/{}: {}",
                f.name,
                p.name,
                p.minimum_engine_version
            );
        }
    }
    assert!(family("redis8").is_none());
    assert!(family("memcached1.6.cluster.on").is_none());
}

#[test]
fn every_default_passes_its_own_validation() {
    for f in families() {
        for p in &f.params {
            if let Some(v) = &p.default_value {
                assert_eq!(validate(p, v), Ok(()), "{}/{}={v}", f.name, p.name);
            }
        }
        for n in &f.node_type_specific {
            for (t, v) in &n.values {
                let p = n.as_param(t);
                assert_eq!(validate(&p, v), Ok(()), "{}/{}[{t}]={v}", f.name, n.name);
            }
        }
    }
}

#[test]
fn node_type_values_cover_the_control_plane_catalogue() {
    let ours: Vec<&str> = node_types().collect();
    assert_eq!(ours, NODE_TYPES);
    for f in families() {
        for n in &f.node_type_specific {
            for t in NODE_TYPES {
                let v = n.value_for(t);
                assert!(v.is_some(), "{}/{} has no value for {t}", f.name, n.name);
            }
        }
    }
}

#[test]
fn node_type_values_are_the_published_ones() {
    let r7 = fam("redis7");
    let maxmemory = r7.node_type_specific_param("maxmemory").unwrap();
    assert_eq!(maxmemory.value_for("cache.t3.micro"), Some("536870912"));
    assert_eq!(maxmemory.value_for("cache.r6g.large"), Some("14037181030"));
    assert_eq!(maxmemory.value_for("cache.m5.large"), Some("6854542746"));
    assert_eq!(maxmemory.value_for("cache.t2.micro"), Some("581959680"));
    assert!(!maxmemory.is_modifiable);
    assert_eq!(maxmemory.change_type, ChangeType::Immediate);
    let hard = r7
        .node_type_specific_param("client-output-buffer-limit-replica-hard-limit")
        .unwrap();
    assert_eq!(hard.value_for("cache.r5.large"), Some("1403718103"));
    assert!(fam("redis2.8")
        .node_type_specific_param("client-output-buffer-limit-slave-soft-limit")
        .is_some());

    let mc = fam("memcached1.6");
    let mem = mc.node_type_specific_param("max_cache_memory").unwrap();
    assert_eq!(mem.value_for("cache.m5.large"), Some("6537"));
    assert_eq!(mem.value_for("cache.t3.micro"), Some("512"));
    let threads = mc.node_type_specific_param("num_threads").unwrap();
    assert_eq!(threads.value_for("cache.r6g.4xlarge"), Some("16"));
    assert_eq!(threads.value_for("cache.t2.micro"), Some("1"));
    assert!(mc.node_type_specific_param("maxmemory").is_none());
}

#[test]
fn maxmemory_policy_everywhere() {
    for f in redis_like() {
        let p = par(f, "maxmemory-policy");
        assert_eq!(
            p.default_value.as_deref(),
            Some("volatile-lru"),
            "{}",
            f.name
        );
        assert!(p.is_modifiable);
        assert_eq!(p.change_type, ChangeType::Immediate);
        assert_eq!(p.data_type, DataType::String);
        let lfu =
            !matches!(f.name.as_str(), "redis2.6" | "redis2.8") && !f.name.starts_with("redis3.2");
        let expected = if lfu {
            "volatile-lru,allkeys-lru,volatile-lfu,allkeys-lfu,volatile-random,allkeys-random,volatile-ttl,noeviction"
        } else {
            "volatile-lru,allkeys-lru,volatile-random,allkeys-random,volatile-ttl,noeviction"
        };
        assert_eq!(p.allowed_values.as_deref(), Some(expected), "{}", f.name);
        assert_eq!(validate(p, "noeviction"), Ok(()));
        assert_eq!(validate(p, "allkeys-lfu").is_ok(), lfu, "{}", f.name);
        assert!(validate(p, "bogus").is_err());
        assert!(validate(p, "").is_err());
        assert!(validate(p, "NOEVICTION").is_err());
    }
}

#[test]
fn common_redis_parameters() {
    for f in redis_like() {
        let n = &f.name;
        let samples = par(f, "maxmemory-samples");
        assert_eq!(samples.default_value.as_deref(), Some("3"), "{n}");
        assert_eq!(samples.data_type, DataType::Integer);
        assert_eq!(samples.change_type, ChangeType::Immediate);
        let expected = if n.starts_with("valkey8") {
            "1-64"
        } else {
            "1-"
        };
        assert_eq!(samples.allowed_values.as_deref(), Some(expected), "{n}");

        let timeout = par(f, "timeout");
        assert_eq!(timeout.default_value.as_deref(), Some("0"));
        assert_eq!(timeout.allowed_values.as_deref(), Some("0,20-"));
        assert!(timeout.is_modifiable);

        // notify-keyspace-events arrived with Redis 2.8.6.
        if n != "redis2.6" {
            let nke = par(f, "notify-keyspace-events");
            assert_eq!(nke.default_value, None, "{n}");
            assert_eq!(nke.allowed_values, None, "{n}");
            assert_eq!(nke.change_type, ChangeType::Immediate);
        }

        let slower = par(f, "slowlog-log-slower-than");
        assert_eq!(slower.default_value.as_deref(), Some("10000"));
        assert_eq!(slower.allowed_values.as_deref(), Some("-"));
        let len = par(f, "slowlog-max-len");
        assert_eq!(len.default_value.as_deref(), Some("128"));
        assert_eq!(len.allowed_values.as_deref(), Some("0-"));

        let rmp = par(f, "reserved-memory-percent");
        assert_eq!(rmp.default_value.as_deref(), Some("25"));
        assert_eq!(rmp.allowed_values.as_deref(), Some("0-100"));
        assert_eq!(rmp.change_type, ChangeType::Immediate);
        assert!(rmp.is_modifiable);

        let maxclients = par(f, "maxclients");
        assert_eq!(maxclients.default_value.as_deref(), Some("65000"));
        assert!(!maxclients.is_modifiable);
        assert_eq!(maxclients.change_type, ChangeType::RequiresReboot);
        assert_eq!(
            check_modifiable(maxclients),
            Err("The parameter maxclients cannot be modified.".to_owned())
        );

        let databases = par(f, "databases");
        assert_eq!(databases.default_value.as_deref(), Some("16"));
        assert_eq!(databases.change_type, ChangeType::RequiresReboot);
        assert_eq!(databases.allowed_values.as_deref(), Some("1-1200000"));
        assert!(databases.is_modifiable || databases.conditionally_modifiable);

        let aof = par(f, "appendonly");
        assert_eq!(aof.default_value.as_deref(), Some("no"));

        assert_eq!(
            par(f, "lua-time-limit").default_value.as_deref(),
            Some("5000")
        );
    }
}

#[test]
fn lfu_defrag_and_lazyfree_by_version() {
    for f in redis_like() {
        let n = f.name.as_str();
        let has_lfu = !(n.starts_with("redis2") || n.starts_with("redis3"));
        assert_eq!(f.param("lfu-log-factor").is_some(), has_lfu, "{n}");
        assert_eq!(f.param("activedefrag").is_some(), has_lfu, "{n}");
        if !has_lfu {
            continue;
        }
        let lf = par(f, "lfu-log-factor");
        assert_eq!(lf.default_value.as_deref(), Some("10"));
        assert_eq!(lf.allowed_values.as_deref(), Some("1-"));
        assert_eq!(lf.change_type, ChangeType::Immediate);
        let ld = par(f, "lfu-decay-time");
        assert_eq!(ld.default_value.as_deref(), Some("1"));
        assert_eq!(ld.allowed_values.as_deref(), Some("0-"));
        let ad = par(f, "activedefrag");
        assert_eq!(ad.default_value.as_deref(), Some("no"));
        assert_eq!(ad.allowed_values.as_deref(), Some("yes,no"));
        assert!(ad.is_modifiable);
        // Valkey 8 drops the lazyfree-* parameters (always on in the engine).
        let lazy = !n.starts_with("valkey8");
        for name in [
            "lazyfree-lazy-eviction",
            "lazyfree-lazy-expire",
            "lazyfree-lazy-server-del",
        ] {
            assert_eq!(f.param(name).is_some(), lazy, "{n}/{name}");
            if let Some(p) = f.param(name) {
                assert_eq!(p.default_value.as_deref(), Some("no"));
                assert_eq!(p.change_type, ChangeType::Immediate);
            }
        }
    }
    assert!(fam("redis6.x").param("lazyfree-lazy-user-del").is_some());
    assert!(fam("redis5.0").param("lazyfree-lazy-user-del").is_none());
}

#[test]
fn encodings_follow_the_engine_version() {
    for name in ["redis7", "valkey7", "valkey8", "redis7.cluster.on"] {
        let f = fam(name);
        assert!(f.param("hash-max-ziplist-entries").is_none(), "{name}");
        for (p, d) in [
            ("hash-max-listpack-entries", "512"),
            ("hash-max-listpack-value", "64"),
            ("zset-max-listpack-entries", "128"),
            ("zset-max-listpack-value", "64"),
        ] {
            let def = par(f, p);
            assert_eq!(def.default_value.as_deref(), Some(d), "{name}/{p}");
            assert_eq!(def.allowed_values.as_deref(), Some("0-"));
            assert!(def.is_modifiable);
            assert_eq!(def.change_type, ChangeType::Immediate);
        }
        assert_eq!(
            par(f, "latency-tracking").default_value.as_deref(),
            Some("no")
        );
    }
    for name in ["redis2.8", "redis5.0", "redis6.x"] {
        let f = fam(name);
        assert_eq!(
            par(f, "hash-max-ziplist-entries").default_value.as_deref(),
            Some("512")
        );
        assert!(f.param("hash-max-listpack-entries").is_none());
    }
    assert!(fam("redis3.2").param("list-max-ziplist-entries").is_none());
    assert!(fam("redis2.8").param("list-max-ziplist-entries").is_some());
}

#[test]
fn renamed_replica_parameters() {
    let f = fam("redis4.0");
    assert!(f.param("min-slaves-to-write").is_some());
    assert!(f.param("min-replicas-to-write").is_none());
    let f = fam("redis5.0");
    assert!(f.param("min-slaves-to-write").is_none());
    assert_eq!(
        par(f, "min-replicas-max-lag").default_value.as_deref(),
        Some("10")
    );
    assert!(f.param("repl-timeout").is_none());
    assert_eq!(
        par(fam("redis2.8"), "repl-timeout")
            .allowed_values
            .as_deref(),
        Some("11-")
    );
}

#[test]
fn cluster_enabled_by_family() {
    for f in redis_like() {
        let n = &f.name;
        let on = f.is_cluster_on();
        match f.param("cluster-enabled") {
            None => assert!(n == "redis2.6" || n == "redis2.8", "{n}"),
            Some(p) => {
                let expected = if on { "yes" } else { "no" };
                assert_eq!(p.default_value.as_deref(), Some(expected), "{n}");
                assert!(!p.is_modifiable, "{n}");
                assert_eq!(p.change_type, ChangeType::RequiresReboot);
                assert_eq!(
                    check_modifiable(p),
                    Err("The parameter cluster-enabled cannot be modified.".to_owned())
                );
            }
        }
    }
    // A .cluster.on family is its base family apart from cluster-enabled.
    for on in CLUSTER_ON {
        let base = fam(on.trim_end_matches(".cluster.on"));
        let f = fam(on);
        assert_eq!(f.engine, base.engine);
        assert_eq!(f.params.len(), base.params.len());
        for (a, b) in f.params.iter().zip(&base.params) {
            if a.name != "cluster-enabled" {
                assert_eq!(a, b);
            }
        }
        assert_eq!(f.node_type_specific, base.node_type_specific);
        assert_eq!(f.default_group_name(), format!("default.{on}"));
    }
}

#[test]
fn valkey8_changes() {
    let f = fam("valkey8");
    assert_eq!(f.engine, "valkey");
    assert_eq!(
        par(f, "repl-backlog-size").default_value.as_deref(),
        Some("10485760")
    );
    assert_eq!(
        par(f, "extended-redis-compatibility")
            .default_value
            .as_deref(),
        Some("yes")
    );
    let cl = par(f, "commandlog-large-request-max-len");
    assert_eq!(cl.minimum_engine_version, "8.1.0");
    assert!(validate(cl, "1025").is_err());
    assert_eq!(validate(cl, "1024"), Ok(()));
    assert_eq!(
        par(fam("valkey7"), "repl-backlog-size")
            .default_value
            .as_deref(),
        Some("1048576")
    );
}

#[test]
fn memcached_parameters() {
    for name in ["memcached1.4", "memcached1.5", "memcached1.6"] {
        let f = fam(name);
        assert_eq!(f.engine, "memcached");
        let item = par(f, "max_item_size");
        assert_eq!(item.default_value.as_deref(), Some("1048576"));
        assert_eq!(item.change_type, ChangeType::RequiresReboot);
        assert!(item.is_modifiable);
        assert!(validate(item, "1024").is_err());
        assert_eq!(validate(item, "2097152"), Ok(()));

        let chunk = par(f, "chunk_size");
        assert_eq!(chunk.default_value.as_deref(), Some("48"));
        let growth = par(f, "chunk_size_growth_factor");
        assert_eq!(growth.default_value.as_deref(), Some("1.25"));
        assert_eq!(growth.data_type, DataType::Numeric);
        assert_eq!(validate(growth, "1.5"), Ok(()));
        assert!(validate(growth, "fast").is_err());

        let m = par(f, "error_on_memory_exhausted");
        assert_eq!(m.default_value.as_deref(), Some("0"));
        assert_eq!(m.data_type, DataType::Boolean);
        assert_eq!(m.allowed_values.as_deref(), Some("0,1"));
        assert_eq!(validate(m, "1"), Ok(()));
        assert!(validate(m, "yes").is_err());
        assert!(validate(m, "2").is_err());

        let conns = par(f, "max_simultaneous_connections");
        assert_eq!(conns.default_value.as_deref(), Some("65000"));
        assert!(!conns.is_modifiable);
        assert_eq!(par(f, "cas_disabled").default_value.as_deref(), Some("0"));
        let proto = par(f, "binding_protocol");
        assert_eq!(proto.default_value.as_deref(), Some("auto"));
        assert_eq!(validate(proto, "ascii"), Ok(()));
        assert_eq!(
            par(f, "backlog_queue_limit").default_value.as_deref(),
            Some("1024")
        );
        assert_eq!(
            par(f, "memcached_connections_overhead")
                .default_value
                .as_deref(),
            Some("100")
        );
        assert_eq!(par(f, "maxconns_fast").default_value.as_deref(), Some("0"));
        assert_eq!(par(f, "lru_crawler").default_value.as_deref(), Some("0"));
        assert_eq!(par(f, "slab_reassign").default_value.as_deref(), Some("0"));
        assert!(f.param("cluster-enabled").is_none());
    }
    assert!(fam("memcached1.4").param("modern").is_some());
    assert!(fam("memcached1.4").param("no_modern").is_none());
    assert_eq!(
        par(fam("memcached1.6"), "no_modern")
            .default_value
            .as_deref(),
        Some("1")
    );
}

#[test]
fn invalid_values_are_rejected_with_aws_wording() {
    let f = fam("redis7");
    assert_eq!(
        validate(par(f, "maxmemory-policy"), "bogus"),
        Err("Value bogus for parameter maxmemory-policy is invalid. Allowed values are: volatile-lru,allkeys-lru,volatile-lfu,allkeys-lfu,volatile-random,allkeys-random,volatile-ttl,noeviction".to_owned())
    );
    assert_eq!(
        validate(par(f, "maxmemory-samples"), "abc"),
        Err(
            "Value abc for parameter maxmemory-samples is invalid. The value must be an integer."
                .to_owned()
        )
    );
    assert!(validate(par(f, "maxmemory-samples"), "0").is_err());
    assert!(validate(par(f, "maxmemory-samples"), "3.5").is_err());
    assert_eq!(validate(par(f, "maxmemory-samples"), "10"), Ok(()));
    assert!(validate(par(fam("valkey8"), "maxmemory-samples"), "65").is_err());

    let timeout = par(f, "timeout");
    assert_eq!(validate(timeout, "0"), Ok(()));
    assert_eq!(validate(timeout, "20"), Ok(()));
    assert_eq!(validate(timeout, "3600"), Ok(()));
    assert_eq!(
        validate(timeout, "5"),
        Err("Value 5 for parameter timeout is invalid. Allowed values are: 0,20-".to_owned())
    );
    assert!(validate(timeout, "-1").is_err());

    let rmp = par(f, "reserved-memory-percent");
    assert!(validate(rmp, "101").is_err());
    assert_eq!(validate(rmp, "100"), Ok(()));

    let slower = par(f, "slowlog-log-slower-than");
    assert_eq!(validate(slower, "-1"), Ok(()));
    assert_eq!(validate(slower, "0"), Ok(()));
    assert!(validate(slower, "x").is_err());

    assert!(validate(par(f, "lfu-log-factor"), "0").is_err());
    assert!(validate(par(f, "activedefrag"), "maybe").is_err());
    assert_eq!(validate(par(f, "activedefrag"), "yes"), Ok(()));
    assert!(validate(par(f, "active-defrag-cycle-max"), "76").is_err());
    assert!(validate(par(f, "databases"), "0").is_err());
    assert_eq!(validate(par(f, "databases"), "32"), Ok(()));
    // Fixed-value parameters list their only value.
    assert!(validate(par(f, "lua-time-limit"), "1000").is_err());
    assert!(validate(par(f, "maxclients"), "65001").is_err());
}

#[test]
fn keyspace_events_and_renames() {
    let f = fam("redis6.x");
    let nke = par(f, "notify-keyspace-events");
    for ok in ["", "AKE", "Ex", "Kgx$", "KEA"] {
        assert_eq!(validate(nke, ok), Ok(()), "{ok}");
    }
    assert!(validate(nke, "KEq").is_err());
    assert!(validate(nke, "K E").is_err());

    let rc = par(f, "rename-commands");
    assert_eq!(rc.default_value.as_deref(), Some(""));
    assert_eq!(validate(rc, ""), Ok(()));
    assert_eq!(
        validate(rc, "flushall blocked-flushall KEYS mykeys"),
        Ok(())
    );
    assert!(validate(rc, "flushall").is_err());
    assert!(validate(rc, "config myconfig").is_err());
}

#[test]
fn allowed_values_grammar() {
    let mk = |dt, allowed: &str| ParamDef {
        name: "p".to_owned(),
        default_value: None,
        description: String::new(),
        source: "system".to_owned(),
        data_type: dt,
        allowed_values: Some(allowed.to_owned()),
        is_modifiable: true,
        conditionally_modifiable: false,
        minimum_engine_version: "1.0.0".to_owned(),
        change_type: ChangeType::Immediate,
    };
    let neg = mk(DataType::Integer, "-1-");
    assert_eq!(validate(&neg, "-1"), Ok(()));
    assert_eq!(validate(&neg, "99999"), Ok(()));
    assert!(validate(&neg, "-2").is_err());
    let list = mk(DataType::Integer, "-5,-4,-3,-2,-1,1-");
    assert_eq!(validate(&list, "-2"), Ok(()));
    assert_eq!(validate(&list, "7"), Ok(()));
    assert!(validate(&list, "0").is_err());
    assert!(validate(&list, "-6").is_err());
    let range = mk(DataType::Integer, "1-20");
    assert_eq!(validate(&range, "20"), Ok(()));
    assert!(validate(&range, "21").is_err());
    let endpoint = mk(DataType::String, "ip,tls-dynamic");
    assert_eq!(validate(&endpoint, "tls-dynamic"), Ok(()));
    assert!(validate(&endpoint, "tls").is_err());
    let any = mk(DataType::Integer, "-");
    assert_eq!(validate(&any, "-100"), Ok(()));
    assert!(validate(&any, "").is_err());
}

#[test]
fn change_and_data_type_strings() {
    assert_eq!(ChangeType::Immediate.as_str(), "immediate");
    assert_eq!(ChangeType::RequiresReboot.as_str(), "requires-reboot");
    for t in [
        DataType::String,
        DataType::Integer,
        DataType::Boolean,
        DataType::Numeric,
    ] {
        assert_eq!(DataType::parse(t.as_str()), Some(t));
    }
}
