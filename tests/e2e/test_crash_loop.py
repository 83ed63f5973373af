"""Issue 7: kill -9 the server at random moments of create/delete/snapshot loops;
every restart must come up cleanly with nothing stuck in flight and no resource
half-created."""
import random
import time

import botocore.exceptions
import redis

from conftest import Server

ROUNDS = 50
IN_FLIGHT = {"creating", "deleting", "modifying", "rebooting cluster nodes", "snapshotting"}


def settle(ec, deadline=20):
    """After a restart every cluster reaches a final state on its own."""
    end = time.time() + deadline
    while True:
        clusters = ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        snaps = ec.describe_snapshots()["Snapshots"]
        if not any(c["CacheClusterStatus"] in IN_FLIGHT for c in clusters) and \
                not any(s["SnapshotStatus"] == "creating" for s in snaps):
            return clusters, snaps
        assert time.time() < end, [(c["CacheClusterId"], c["CacheClusterStatus"]) for c in clusters]
        time.sleep(0.05)


def test_kill_minus_nine_loop_leaves_consistent_state():
    rng = random.Random(7)
    s = Server()
    stats = {"rounds": 0, "clusters_seen": 0, "snapshots_seen": 0}
    try:
        for round_no in range(ROUNDS):
            ec = s.client()
            ops = rng.randint(1, 6)
            for _ in range(ops):
                op = rng.choice(["create", "create", "delete", "snapshot"])
                cid = f"c{rng.randint(0, 5)}"
                try:
                    if op == "create":
                        ec.create_cache_cluster(CacheClusterId=cid, Engine=rng.choice(["redis", "memcached"]))
                    elif op == "delete":
                        ec.delete_cache_cluster(CacheClusterId=cid)
                    else:
                        ec.create_snapshot(SnapshotName=f"s{round_no}-{cid}", CacheClusterId=cid)
                except botocore.exceptions.ClientError:
                    pass  # wrong state / exists / not found: fine, it is a random walk
            time.sleep(rng.random() * 0.05)
            s.proc.kill()
            s.proc.wait()
            s.start()
            ec = s.client()
            clusters, snaps = settle(ec)
            for c in clusters:
                assert c["CacheClusterStatus"] in ("available", "restore-failed"), c
                for n in c["CacheNodes"]:
                    ep = n["Endpoint"]
                    if c["Engine"] == "redis":
                        assert redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5).ping()
            for snap in snaps:
                assert snap["SnapshotStatus"] == "available", snap
            stats["rounds"] += 1
            stats["clusters_seen"] += len(clusters)
            stats["snapshots_seen"] += len(snaps)
    finally:
        s.stop()
    print(f"crash loop: {stats}")
    assert stats["rounds"] == ROUNDS
