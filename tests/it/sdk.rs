//! The Rust AWS SDK is the strictest reader of our XML: a list element under the
//! wrong name reads as an empty list there, silently. Every shape it parses here
//! must come back complete.

use crate::helpers::{memcached_version, redis_ping, wait_gone, wait_status, Server};
use aws_sdk_elasticache::error::ProvideErrorMetadata;
use aws_sdk_elasticache::types::Tag;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

#[tokio::test]
async fn redis_cluster_create_describe_tag_delete() {
    let s = Server::start().await;
    let c = s.sdk();
    let created = c
        .create_cache_cluster()
        .cache_cluster_id("SdkRedis")
        .engine("redis")
        .engine_version("7.0")
        .cache_node_type("cache.t3.small")
        .num_cache_nodes(1)
        .preferred_maintenance_window("Mon:01:00-Mon:02:00")
        .security_group_ids("sg-123")
        .tags(tag("team", "cache"))
        .tags(tag("env", "test"))
        .send()
        .await
        .expect("create");
    let cc = created
        .cache_cluster()
        .expect("CacheCluster in the create response");
    assert_eq!(cc.cache_cluster_id(), Some("sdkredis"));
    assert_eq!(cc.cache_cluster_status(), Some("creating"));
    assert_eq!(cc.engine_version(), Some("7.0.7"));
    assert_eq!(
        cc.preferred_maintenance_window(),
        Some("mon:01:00-mon:02:00")
    );
    let arn = cc.arn().expect("ARN").to_string();

    wait_status(&s, "sdkredis", "available").await;
    let out = c
        .describe_cache_clusters()
        .cache_cluster_id("sdkredis")
        .show_cache_node_info(true)
        .send()
        .await
        .expect("describe");
    let cc = &out.cache_clusters()[0];
    assert_eq!(cc.engine(), Some("redis"));
    assert_eq!(cc.cache_node_type(), Some("cache.t3.small"));
    assert_eq!(cc.num_cache_nodes(), Some(1));
    assert_eq!(
        cc.cache_parameter_group()
            .and_then(|g| g.cache_parameter_group_name()),
        Some("default.redis7")
    );
    assert_eq!(cc.security_groups().len(), 1);
    assert_eq!(cc.security_groups()[0].security_group_id(), Some("sg-123"));
    assert_eq!(cc.snapshot_window(), Some("06:00-07:00"));
    assert_eq!(cc.transit_encryption_enabled(), Some(false));
    assert!(cc.cache_cluster_create_time().is_some());
    let nodes = cc.cache_nodes();
    assert_eq!(nodes.len(), 1);
    let n = &nodes[0];
    assert_eq!(n.cache_node_id(), Some("0001"));
    assert_eq!(n.cache_node_status(), Some("available"));
    assert_eq!(n.customer_availability_zone(), Some("us-east-1a"));
    let ep = n.endpoint().expect("Endpoint");
    assert_eq!(
        ep.port(),
        Some(6379),
        "the requested/default port is honoured"
    );
    let addr = format!("{}:{}", ep.address().unwrap(), ep.port().unwrap());
    assert!(redis_ping(&addr), "node at {addr} answers PING");

    let tags = c
        .list_tags_for_resource()
        .resource_name(&arn)
        .send()
        .await
        .expect("tags");
    let mut got: Vec<_> = tags
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, vec![("env", "test"), ("team", "cache")]);
    c.add_tags_to_resource()
        .resource_name(&arn)
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    let after = c
        .remove_tags_from_resource()
        .resource_name(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let got: Vec<_> = after
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(got, vec![("env", "prod")]);

    let del = c
        .delete_cache_cluster()
        .cache_cluster_id("sdkredis")
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.cache_cluster().and_then(|c| c.cache_cluster_status()),
        Some("deleting")
    );
    wait_gone(&s, "sdkredis").await;
    let err = c
        .list_tags_for_resource()
        .resource_name(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("CacheClusterNotFound"));
}

#[tokio::test]
async fn modeled_errors_reach_the_sdk_as_their_types() {
    let s = Server::start().await;
    let c = s.sdk();
    c.create_cache_cluster()
        .cache_cluster_id("dup")
        .engine("valkey")
        .send()
        .await
        .unwrap();
    let e = c
        .create_cache_cluster()
        .cache_cluster_id("DUP")
        .engine("valkey")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_cache_cluster_already_exists_fault()),
        "{e:?}"
    );

    let e = c
        .describe_cache_clusters()
        .cache_cluster_id("missing")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_cache_cluster_not_found_fault()),
        "{e:?}"
    );

    let e = c
        .delete_cache_cluster()
        .cache_cluster_id("missing")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_cache_cluster_not_found_fault()),
        "{e:?}"
    );

    let e = c
        .create_cache_cluster()
        .cache_cluster_id("x1")
        .engine("redis")
        .cache_node_type("cache.nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_value_exception()),
        "{e:?}"
    );

    let e = c
        .create_cache_cluster()
        .cache_cluster_id("x2")
        .engine("redis")
        .num_cache_nodes(2)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_value_exception()),
        "{e:?}"
    );

    let e = c
        .create_cache_cluster()
        .cache_cluster_id("x3")
        .engine("redis")
        .cache_parameter_group_name("my-params")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_cache_parameter_group_not_found_fault()),
        "{e:?}"
    );

    let e = c
        .create_cache_cluster()
        .cache_cluster_id("x4")
        .engine("redis")
        .cache_subnet_group_name("private")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_cache_subnet_group_not_found_fault()),
        "{e:?}"
    );

    let e = c
        .create_cache_cluster()
        .cache_cluster_id("x5")
        .replication_group_id("no-such-group")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_replication_group_not_found_fault()),
        "{e:?}"
    );
}

#[tokio::test]
async fn memcached_cluster_scales_nodes_and_keeps_a_configuration_endpoint() {
    let s = Server::start().await;
    let c = s.sdk();
    let out = c
        .create_cache_cluster()
        .cache_cluster_id("mc")
        .engine("memcached")
        .num_cache_nodes(3)
        .az_mode(aws_sdk_elasticache::types::AzMode::CrossAz)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.cache_cluster()
            .and_then(|c| c.preferred_availability_zone()),
        Some("Multiple")
    );
    wait_status(&s, "mc", "available").await;
    let d = c
        .describe_cache_clusters()
        .cache_cluster_id("mc")
        .show_cache_node_info(true)
        .send()
        .await
        .unwrap();
    let cc = &d.cache_clusters()[0];
    assert_eq!(cc.engine_version(), Some("1.6.22"));
    let cfg = cc.configuration_endpoint().expect("ConfigurationEndpoint");
    assert_eq!(cfg.port(), Some(11211));
    let zones: Vec<_> = cc
        .cache_nodes()
        .iter()
        .map(|n| n.customer_availability_zone().unwrap())
        .collect();
    assert_eq!(zones, vec!["us-east-1a", "us-east-1b", "us-east-1c"]);
    for n in cc.cache_nodes() {
        let ep = n.endpoint().unwrap();
        assert_eq!(ep.port(), Some(11211));
        assert!(memcached_version(&format!(
            "{}:{}",
            ep.address().unwrap(),
            ep.port().unwrap()
        )));
    }

    // Without ApplyImmediately the change waits for the maintenance window.
    let m = c
        .modify_cache_cluster()
        .cache_cluster_id("mc")
        .num_cache_nodes(5)
        .send()
        .await
        .unwrap();
    let pending = m
        .cache_cluster()
        .unwrap()
        .pending_modified_values()
        .unwrap();
    assert_eq!(pending.num_cache_nodes(), Some(5));
    wait_status(&s, "mc", "available").await;

    c.modify_cache_cluster()
        .cache_cluster_id("mc")
        .num_cache_nodes(5)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    wait_status(&s, "mc", "available").await;
    let d = c
        .describe_cache_clusters()
        .cache_cluster_id("mc")
        .show_cache_node_info(true)
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = d.cache_clusters()[0]
        .cache_nodes()
        .iter()
        .map(|n| n.cache_node_id().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["0001", "0002", "0003", "0004", "0005"]);

    let e = c
        .modify_cache_cluster()
        .cache_cluster_id("mc")
        .num_cache_nodes(3)
        .cache_node_ids_to_remove("0002")
        .apply_immediately(true)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_value_exception()),
        "{e:?}"
    );

    c.modify_cache_cluster()
        .cache_cluster_id("mc")
        .num_cache_nodes(3)
        .cache_node_ids_to_remove("0002")
        .cache_node_ids_to_remove("0004")
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    wait_status(&s, "mc", "available").await;
    let d = c
        .describe_cache_clusters()
        .cache_cluster_id("mc")
        .show_cache_node_info(true)
        .send()
        .await
        .unwrap();
    let cc = &d.cache_clusters()[0];
    let ids: Vec<_> = cc
        .cache_nodes()
        .iter()
        .map(|n| n.cache_node_id().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["0001", "0003", "0005"]);
    assert_eq!(cc.num_cache_nodes(), Some(3));
}

#[tokio::test]
async fn pagination_and_engine_versions() {
    let s = Server::start().await;
    let c = s.sdk();
    for i in 0..23 {
        c.create_cache_cluster()
            .cache_cluster_id(format!("page-{i:02}"))
            .engine("memcached")
            .send()
            .await
            .unwrap();
    }
    let first = c
        .describe_cache_clusters()
        .max_records(20)
        .send()
        .await
        .unwrap();
    assert_eq!(first.cache_clusters().len(), 20);
    assert!(first.marker().is_some());
    let all: Vec<_> = c
        .describe_cache_clusters()
        .max_records(20)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let ids: Vec<_> = all
        .iter()
        .map(|c| c.cache_cluster_id().unwrap().to_string())
        .collect();
    let want: Vec<_> = (0..23).map(|i| format!("page-{i:02}")).collect();
    assert_eq!(ids, want);

    let v = c
        .describe_cache_engine_versions()
        .engine("redis")
        .default_only(true)
        .send()
        .await
        .unwrap();
    assert_eq!(v.cache_engine_versions().len(), 1);
    assert_eq!(v.cache_engine_versions()[0].engine_version(), Some("7.1.0"));
    assert_eq!(
        v.cache_engine_versions()[0].cache_parameter_group_family(),
        Some("redis7")
    );
    let v = c
        .describe_cache_engine_versions()
        .engine("memcached")
        .send()
        .await
        .unwrap();
    assert!(v.cache_engine_versions().len() >= 5);
}

/// Serverless caches, their snapshots, global datastores and reserved-node
/// offerings: every list the SDK reads must come back under the model's names.
#[tokio::test]
async fn serverless_global_and_reserved_shapes() {
    use aws_sdk_elasticache::types::{CacheUsageLimits, DataStorage, DataStorageUnit};
    let s = Server::start().await;
    let c = s.sdk();
    let created = c
        .create_serverless_cache()
        .serverless_cache_name("sdk-serverless")
        .engine("valkey")
        .cache_usage_limits(
            CacheUsageLimits::builder()
                .data_storage(
                    DataStorage::builder()
                        .maximum(5)
                        .unit(DataStorageUnit::Gb)
                        .build(),
                )
                .build(),
        )
        .security_group_ids("sg-1")
        .subnet_ids("subnet-1")
        .subnet_ids("subnet-2")
        .send()
        .await
        .expect("create serverless cache");
    assert_eq!(
        created.serverless_cache().and_then(|c| c.status()),
        Some("creating")
    );
    let mut cache = None;
    for _ in 0..200 {
        let out = c
            .describe_serverless_caches()
            .send()
            .await
            .expect("describe");
        assert_eq!(
            out.serverless_caches().len(),
            1,
            "list read under its model name"
        );
        if out.serverless_caches()[0].status() == Some("available") {
            cache = Some(out.serverless_caches()[0].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cache = cache.expect("serverless cache available");
    assert_eq!(cache.subnet_ids().len(), 2);
    assert_eq!(cache.security_group_ids(), ["sg-1".to_string()]);
    assert_eq!(cache.endpoint().and_then(|e| e.port()), Some(6379));
    assert_eq!(cache.reader_endpoint().and_then(|e| e.port()), Some(6380));
    assert_eq!(
        cache
            .cache_usage_limits()
            .and_then(|l| l.data_storage())
            .and_then(|d| d.maximum()),
        Some(5)
    );

    c.create_serverless_cache_snapshot()
        .serverless_cache_name("sdk-serverless")
        .serverless_cache_snapshot_name("sdk-snap")
        .send()
        .await
        .expect("snapshot");
    let snaps = c
        .describe_serverless_cache_snapshots()
        .send()
        .await
        .expect("describe snapshots");
    assert_eq!(snaps.serverless_cache_snapshots().len(), 1);
    assert_eq!(
        snaps.serverless_cache_snapshots()[0]
            .serverless_cache_configuration()
            .and_then(|c| c.serverless_cache_name()),
        Some("sdk-serverless")
    );
    let err = c
        .describe_serverless_caches()
        .serverless_cache_name("missing")
        .send()
        .await
        .expect_err("not found");
    assert_eq!(err.code(), Some("ServerlessCacheNotFoundFault"));

    c.create_replication_group()
        .replication_group_id("sdk-global-primary")
        .replication_group_description("p")
        .cache_node_type("cache.m5.large")
        .send()
        .await
        .expect("group");
    for _ in 0..200 {
        let g = c
            .describe_replication_groups()
            .replication_group_id("sdk-global-primary")
            .send()
            .await
            .expect("describe group");
        if g.replication_groups()[0].status() == Some("available") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let g = c
        .create_global_replication_group()
        .global_replication_group_id_suffix("sdk")
        .primary_replication_group_id("sdk-global-primary")
        .send()
        .await
        .expect("global group");
    let gid = g
        .global_replication_group()
        .and_then(|g| g.global_replication_group_id())
        .expect("id")
        .to_string();
    let described = c
        .describe_global_replication_groups()
        .show_member_info(true)
        .send()
        .await
        .expect("describe global");
    assert_eq!(described.global_replication_groups().len(), 1);
    assert_eq!(described.global_replication_groups()[0].members().len(), 1);
    let rg = c
        .describe_replication_groups()
        .replication_group_id("sdk-global-primary")
        .send()
        .await
        .expect("describe group");
    assert_eq!(
        rg.replication_groups()[0]
            .global_replication_group_info()
            .and_then(|i| i.global_replication_group_id()),
        Some(gid.as_str())
    );

    let offerings = c
        .describe_reserved_cache_nodes_offerings()
        .cache_node_type("cache.m5.large")
        .duration("1")
        .offering_type("Partial Upfront")
        .product_description("redis")
        .send()
        .await
        .expect("offerings");
    assert_eq!(offerings.reserved_cache_nodes_offerings().len(), 1);
    let o = &offerings.reserved_cache_nodes_offerings()[0];
    assert_eq!(o.recurring_charges().len(), 1);
    assert!(o.fixed_price().unwrap_or(0.0) > 0.0);
    c.purchase_reserved_cache_nodes_offering()
        .reserved_cache_nodes_offering_id(o.reserved_cache_nodes_offering_id().expect("id"))
        .reserved_cache_node_id("sdk-ri")
        .send()
        .await
        .expect("purchase");
    let nodes = c
        .describe_reserved_cache_nodes()
        .send()
        .await
        .expect("reserved nodes");
    assert_eq!(nodes.reserved_cache_nodes().len(), 1);
    assert_eq!(nodes.reserved_cache_nodes()[0].recurring_charges().len(), 1);
}
