//! Lifecycle: provisioning delay, reboot, restart, crash.

use crate::helpers::{
    memcached_version, node_endpoints, redis_ping, wait_status, xml_value, Server,
};
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

#[tokio::test]
async fn provisioning_delay_is_visible_to_waiters() {
    let s = Server::start_with_args(&["--provision-delay-ms", "400"]).await;
    let (st, body) = s
        .call(
            "CreateCacheCluster",
            &[("CacheClusterId", "slow"), ("Engine", "redis")],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (_, body) = s
        .call("DescribeCacheClusters", &[("CacheClusterId", "slow")])
        .await;
    assert_eq!(xml_value(&body, "CacheClusterStatus"), Some("creating"));
    // Wrong-state operations get the model's fault.
    let (st, body) = s
        .call("DeleteCacheCluster", &[("CacheClusterId", "slow")])
        .await;
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (400, Some("InvalidCacheClusterState"))
    );
    wait_status(&s, "slow", "available").await;
    let (st, _) = s
        .call("DeleteCacheCluster", &[("CacheClusterId", "slow")])
        .await;
    assert_eq!(st, 200);
    let (_, body) = s
        .call("DescribeCacheClusters", &[("CacheClusterId", "slow")])
        .await;
    assert_eq!(xml_value(&body, "CacheClusterStatus"), Some("deleting"));
}

#[tokio::test]
async fn reboot_drops_connections_and_serves_again() {
    let s = Server::start_with_args(&["--provision-delay-ms", "200"]).await;
    s.call(
        "CreateCacheCluster",
        &[("CacheClusterId", "rb"), ("Engine", "redis")],
    )
    .await;
    wait_status(&s, "rb", "available").await;
    let addr = node_endpoints(&s, "rb").await.remove(0);
    assert!(redis_ping(&addr));
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    let (st, body) = s
        .call(
            "RebootCacheCluster",
            &[
                ("CacheClusterId", "rb"),
                ("CacheNodeIdsToReboot.CacheNodeId.1", "0001"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        xml_value(&body, "CacheClusterStatus"),
        Some("rebooting cluster nodes")
    );
    assert_eq!(xml_value(&body, "CacheNodeStatus"), Some("rebooting"));
    let mut buf = [0u8; 16];
    let n = conn.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the client's connection is closed by the reboot");
    wait_status(&s, "rb", "available").await;
    assert_eq!(
        node_endpoints(&s, "rb").await,
        vec![addr.clone()],
        "same endpoint after reboot"
    );
    assert!(redis_ping(&addr));
}

#[tokio::test]
async fn restart_brings_every_cluster_back_on_the_same_endpoints() {
    let mut s = Server::start().await;
    s.call(
        "CreateCacheCluster",
        &[("CacheClusterId", "keep-redis"), ("Engine", "redis")],
    )
    .await;
    s.call(
        "CreateCacheCluster",
        &[
            ("CacheClusterId", "keep-mc"),
            ("Engine", "memcached"),
            ("NumCacheNodes", "2"),
            ("Port", "11311"),
        ],
    )
    .await;
    wait_status(&s, "keep-redis", "available").await;
    wait_status(&s, "keep-mc", "available").await;
    let (_, before) = s
        .call("DescribeCacheClusters", &[("ShowCacheNodeInfo", "true")])
        .await;
    let redis_before = node_endpoints(&s, "keep-redis").await;
    let mc_before = node_endpoints(&s, "keep-mc").await;
    assert!(
        mc_before.iter().all(|e| e.ends_with(":11311")),
        "{mc_before:?}"
    );

    s.stop();
    s.spawn().await;
    let (_, after) = s
        .call("DescribeCacheClusters", &[("ShowCacheNodeInfo", "true")])
        .await;
    let strip = |b: &str| b[..b.find("<ResponseMetadata>").unwrap_or(b.len())].to_string();
    assert_eq!(
        strip(&before),
        strip(&after),
        "described the same after a restart"
    );
    assert_eq!(node_endpoints(&s, "keep-redis").await, redis_before);
    assert!(redis_ping(&redis_before[0]));
    for e in &mc_before {
        assert!(memcached_version(e), "{e}");
    }
}

#[tokio::test]
async fn kill_minus_nine_during_operations_leaves_consistent_state() {
    let mut s = Server::start_with_args(&["--provision-delay-ms", "100000"]).await;
    s.call(
        "CreateCacheCluster",
        &[("CacheClusterId", "inflight"), ("Engine", "redis")],
    )
    .await;
    s.kill();
    // On restart nothing stays `creating` forever: the start-up reconciler
    // finishes what was in flight.
    s.spawn().await;
    wait_status(&s, "inflight", "available").await;
    let e = node_endpoints(&s, "inflight").await;
    assert!(redis_ping(&e[0]));
    let (st, _) = s
        .call("DeleteCacheCluster", &[("CacheClusterId", "inflight")])
        .await;
    assert_eq!(st, 200);
    s.kill();
    s.spawn().await;
    crate::helpers::wait_gone(&s, "inflight").await;
}
