"""Issue 11: log delivery configurations write real slow-log and engine-log lines to
`<data-dir>/logs/<log group or delivery stream>/<cache-cluster-id>/<cache-node-id>/<log-type>.log`."""
import json
import os
import re
import time
import urllib.request

import redis

from conftest import wait_available


def log_files(server):
    """The admin API's list of log files (it waits until every line so far is written)."""
    with urllib.request.urlopen(server.endpoint + "/_elastilite/log-delivery", timeout=10) as r:
        return json.load(r)


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l for l in f.read().splitlines() if l]


def wait_lines(server, path, pred, timeout=10):
    deadline = time.time() + timeout
    while True:
        log_files(server)
        got = lines(path)
        if pred(got):
            return got
        if time.time() > deadline:
            raise AssertionError(f"{path}: {got[-10:]}")
        time.sleep(0.05)


def slow_config(fmt, enabled=True):
    c = {"LogType": "slow-log", "DestinationType": "cloudwatch-logs",
         "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": "/aws/elasticache/app"}},
         "LogFormat": fmt}
    if not enabled:
        c = {"LogType": "slow-log", "Enabled": False}
    return c


def test_slow_log_json_then_text_then_disabled_and_engine_log(server):
    ec = server.client()
    # slowlog-log-slower-than 0: every command is a slow-log entry (CONFIG is
    # restricted on ElastiCache nodes; the parameter group is the way).
    ec.create_cache_parameter_group(CacheParameterGroupName="slow-all", CacheParameterGroupFamily="redis7",
                                    Description="log every command")
    ec.modify_cache_parameter_group(CacheParameterGroupName="slow-all", ParameterNameValues=[
        {"ParameterName": "slowlog-log-slower-than", "ParameterValue": "0"}])
    ec.create_cache_cluster(
        CacheClusterId="logged", Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1,
        CacheParameterGroupName="slow-all",
        LogDeliveryConfigurations=[
            slow_config("json"),
            {"LogType": "engine-log", "DestinationType": "kinesis-firehose",
             "DestinationDetails": {"KinesisFirehoseDetails": {"DeliveryStream": "engine-stream"}},
             "LogFormat": "text"},
        ])
    c = wait_available(ec, "logged")
    assert {l["LogType"]: l["LogFormat"] for l in c["LogDeliveryConfigurations"]} == {
        "slow-log": "json", "engine-log": "text"}
    root = os.path.join(server.data_dir, "logs")
    slow_path = os.path.join(root, "aws", "elasticache", "app", "logged", "0001", "slow-log.log")
    engine_path = os.path.join(root, "engine-stream", "logged", "0001", "engine-log.log")
    listed = {f["path"]: f for f in log_files(server)["files"]}
    assert listed[slow_path]["log_format"] == "json" and listed[slow_path]["cache_cluster_id"] == "logged"
    assert listed[engine_path]["log_type"] == "engine-log"

    ep = c["CacheNodes"][0]["Endpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5, client_name="app-1")
    assert r.set("user:1", "alice")
    assert r.get("user:1") == b"alice"
    got = wait_lines(server, slow_path, lambda ls: any('"SET' in l for l in ls))
    entries = [json.loads(l) for l in got]
    set_entry = next(e for e in entries if e["Command"].upper().startswith("SET"))
    assert list(set_entry) == ["CacheClusterId", "CacheNodeId", "Id", "Timestamp", "Duration (us)",
                               "Command", "ClientAddress", "ClientName"]
    assert set_entry["CacheClusterId"] == "logged" and set_entry["CacheNodeId"] == "0001"
    # Keys and values are never logged: "(N more arguments)" as ElastiCache writes.
    assert set_entry["Command"] == "SET ... (2 more arguments)"
    assert set_entry["ClientName"] == "app-1"
    assert re.match(r"^127\.\d+\.\d+\.\d+:\d+$", set_entry["ClientAddress"]), set_entry
    assert abs(set_entry["Timestamp"] - time.time()) < 60 and set_entry["Duration (us)"] >= 0
    ids = [e["Id"] for e in entries]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # The slow-log the client sees holds the same entries.
    assert any(e["id"] == set_entry["Id"] for e in r.slowlog_get(128))

    # The engine log: redis-server style lines, with the node's start.
    eng = wait_lines(server, engine_path, lambda ls: any("Ready to accept connections" in l for l in ls))
    assert re.match(r"^\d+:M \d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} [*#-] ", eng[-1]), eng

    # Switch to TEXT: new entries are AWS's comma-separated form.
    ec.modify_cache_cluster(CacheClusterId="logged", ApplyImmediately=True,
                            LogDeliveryConfigurations=[slow_config("text")])
    before = len(lines(slow_path))
    r.incr("counter")
    got = wait_lines(server, slow_path, lambda ls: any(",INCRBY ... (2 more arguments)," in l for l in ls[before:]))
    text = next(l for l in got[before:] if ",INCRBY " in l)
    fields = text.split(",")
    assert fields[0:2] == ["logged", "0001"] and fields[4] == "INCRBY ... (2 more arguments)"
    assert fields[6] == "app-1" and int(fields[2]) > 0

    # Disabled: nothing more is written; the configuration is gone from Describe.
    ec.modify_cache_cluster(CacheClusterId="logged", ApplyImmediately=True,
                            LogDeliveryConfigurations=[slow_config("text", enabled=False)])
    c = ec.describe_cache_clusters(CacheClusterId="logged")["CacheClusters"][0]
    assert [l["LogType"] for l in c["LogDeliveryConfigurations"]] == ["engine-log"]
    log_files(server)
    count = len(lines(slow_path))
    for i in range(20):
        r.set(f"k{i}", i)
    log_files(server)
    assert len(lines(slow_path)) == count
    assert slow_path not in {f["path"] for f in log_files(server)["files"]}

    # Deleting the cluster: its engine log records the shutdown, then stops.
    ec.delete_cache_cluster(CacheClusterId="logged")
    ec.get_waiter("cache_cluster_deleted").wait(CacheClusterId="logged",
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    eng = wait_lines(server, engine_path, lambda ls: any("User requested shutdown" in l for l in ls))
    assert log_files(server)["files"] == []


def test_engine_log_records_failover(server):
    ec = server.client()
    ec.create_replication_group(
        ReplicationGroupId="fo", ReplicationGroupDescription="d", NumCacheClusters=2,
        AutomaticFailoverEnabled=True,
        LogDeliveryConfigurations=[{
            "LogType": "engine-log", "DestinationType": "cloudwatch-logs",
            "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": "fo-engine"}},
            "LogFormat": "json"}])
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="fo",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    root = os.path.join(server.data_dir, "logs", "fo-engine")
    p1 = os.path.join(root, "fo-001", "0001", "engine-log.log")
    p2 = os.path.join(root, "fo-002", "0001", "engine-log.log")

    def messages(path):
        return [json.loads(l) for l in lines(path)]

    # The replica's initial sync.
    wait_lines(server, p2, lambda ls: any("MASTER <-> REPLICA sync: Finished with success" in l for l in ls))
    wait_lines(server, p1, lambda ls: any("asks for synchronization" in l for l in ls))
    e = next(m for m in messages(p2) if "Finished with success" in m["Message"])
    assert list(e) == ["CacheClusterId", "CacheNodeId", "LogLevel", "Time", "Role", "Message"]
    assert (e["CacheClusterId"], e["CacheNodeId"], e["LogLevel"], e["Role"]) == ("fo-002", "0001", "NOTICE", "S")
    assert re.match(r"^\d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} UTC$", e["Time"]), e

    ec.test_failover(ReplicationGroupId="fo", NodeGroupId="0001")
    wait_lines(server, p2, lambda ls: any("MASTER MODE enabled" in l for l in ls))
    promoted = next(m for m in messages(p2) if "MASTER MODE enabled" in m["Message"])
    assert promoted["Role"] == "M"
    # The old primary becomes a replica of the new one and syncs from it.
    wait_lines(server, p1, lambda ls: any("Connecting to MASTER" in l for l in ls))
    wait_lines(server, p1, lambda ls: any("MASTER <-> REPLICA sync" in l for l in ls), timeout=20)

    # ModifyReplicationGroup reaches every member's live node: TEXT now, then disabled.
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="fo",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec.modify_replication_group(ReplicationGroupId="fo", ApplyImmediately=True, LogDeliveryConfigurations=[{
        "LogType": "engine-log", "DestinationType": "cloudwatch-logs",
        "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": "fo-engine"}}, "LogFormat": "text"}])
    files = log_files(server)["files"]
    assert sorted((f["cache_cluster_id"], f["log_format"]) for f in files) == [("fo-001", "text"), ("fo-002", "text")]
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="fo",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec.modify_replication_group(ReplicationGroupId="fo", ApplyImmediately=True,
                                LogDeliveryConfigurations=[{"LogType": "engine-log", "Enabled": False}])
    assert log_files(server)["files"] == []
    g = ec.describe_replication_groups(ReplicationGroupId="fo")["ReplicationGroups"][0]
    assert g.get("LogDeliveryConfigurations", []) == []
