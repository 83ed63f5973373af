"""The web console in headless Chromium (Debian's `chromium`, driven by
playwright-core from npm through tests/e2e/console.js): it shows the clusters,
groups and node roles the API created, its stop/start buttons inject faults, and
its failover button runs TestFailover (issue 11).

The screenshot goes to a temporary file; ELASTILITE_UPDATE_SCREENSHOT=1 copies it
to docs/console.png (the one the README shows)."""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request

import pymemcache.client.base
import pytest
import redis

from conftest import ROOT, wait_available
from test_replication_groups import wait_group

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
PLAYWRIGHT = os.path.join(HERE, "node_modules", "playwright-core")

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.isdir(PLAYWRIGHT)),
    reason="needs Debian's chromium and `npm ci` in tests/e2e (playwright-core)")


class Load(threading.Thread):
    """Steady traffic so the console's ops/s charts have something to draw."""

    def __init__(self, redis_ep, mc_ep):
        super().__init__(daemon=True)
        self.r = redis.Redis(host=redis_ep["Address"], port=redis_ep["Port"], socket_timeout=2)
        self.mc = pymemcache.client.base.Client((mc_ep["Address"], mc_ep["Port"]), timeout=2)
        self.stop = threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            try:
                p = self.r.pipeline(transaction=False)
                for _ in range(20):
                    p.set(f"user:{i % 5000}", "x" * (i % 200))
                    p.get(f"user:{(i * 7) % 5000}")
                    i += 1
                p.execute()
                self.mc.set(f"s{i % 100}", b"v")
                self.mc.get(f"s{(i * 3) % 100}")
            except Exception:
                # Failovers and stopped nodes drop connections: keep going.
                time.sleep(0.05)
            time.sleep(0.02)


def test_console_shows_the_topology_and_injects_faults(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="web", ReplicationGroupDescription="sessions store",
                                NumCacheClusters=3, AutomaticFailoverEnabled=True)
    ec.create_cache_cluster(CacheClusterId="sessions", Engine="memcached", NumCacheNodes=2)
    ec.create_cache_cluster(CacheClusterId="cache", Engine="redis")
    g = wait_group(ec, "web")
    mc = wait_available(ec, "sessions")
    wait_available(ec, "cache")
    load = Load(g["NodeGroups"][0]["PrimaryEndpoint"], mc["CacheNodes"][0]["Endpoint"])
    load.start()
    time.sleep(4)  # a few one-second samples for the charts

    shot = os.path.join(tempfile.mkdtemp(prefix="elastilite-console-"), "console.png")
    try:
        done = subprocess.run(
            ["node", os.path.join(HERE, "console.js"), server.endpoint, shot, "us-east-1/web-002/0001"],
            capture_output=True, text=True, timeout=180, cwd=HERE, env=dict(os.environ, CHROMIUM=CHROMIUM))
    finally:
        load.stop.set()
        load.join()
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["url"].endswith("/_elastilite/console") and out["status"] == 200
    assert out["title"] == "elastilite console"
    assert out["errors"] == []
    before = {r["node"]: r for r in out["before"]}
    assert set(before) == {"us-east-1/web-001/0001", "us-east-1/web-002/0001", "us-east-1/web-003/0001",
                           "us-east-1/sessions/0001", "us-east-1/sessions/0002", "us-east-1/cache/0001"}
    assert before["us-east-1/web-001/0001"]["role"] == "primary"
    assert before["us-east-1/web-002/0001"]["role"] == "replica"
    assert all(r["status"] == "available" for r in before.values())
    nodes = {f"{n['region']}/{n['cache_cluster_id']}/{n['cache_node_id']}": n
             for n in json.load(urllib.request.urlopen(server.endpoint + "/_elastilite/nodes"))}
    for k, r in before.items():
        assert r["endpoint"] == f"{nodes[k]['address']}:{nodes[k]['port']}"
        assert r["sparklines"] == 2, r
    assert out["groups"] == ["us-east-1/web"]

    stopped = {r["node"]: r for r in out["afterStop"]}["us-east-1/web-002/0001"]
    assert stopped["status"] == "stopped"
    assert {r["node"]: r for r in out["afterStart"]}["us-east-1/web-002/0001"]["status"] == "available"

    assert out["primaryBefore"] == "us-east-1/web-001/0001"
    after = {r["node"]: r for r in out["afterFailover"]}
    assert after["us-east-1/web-001/0001"]["role"] == "replica"
    assert [r["role"] for k, r in after.items() if "/web-" in k].count("primary") == 1
    assert any(m.startswith("Failover from master node web-001") for m in
               [e["Message"] for e in ec.describe_events(SourceType="replication-group",
                                                         SourceIdentifier="web")["Events"]])
    assert any("web-002" in m or "Cache node 0001" in m for m in out["eventsAfter"]), out["eventsAfter"]

    with open(shot, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width == 1400 and height >= 600
    if os.environ.get("ELASTILITE_UPDATE_SCREENSHOT") == "1":
        os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
        shutil.copy(shot, os.path.join(ROOT, "docs", "console.png"))


def test_console_state_json(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="solo", Engine="redis")
    wait_available(ec, "solo")
    with urllib.request.urlopen(server.endpoint + "/_elastilite/console/state") as r:
        s = json.load(r)
    (n,) = s["nodes"]
    assert n["cache_cluster_id"] == "solo" and n["engine_role"] == "primary" and n["running"] is True
    assert n["max_memory"] > 0 and n["node_type"]
    # A browser's GET / without an Action is sent to the console; SDK-style requests are not.
    req = urllib.request.Request(server.endpoint + "/", headers={"Accept": "text/html"})
    with urllib.request.urlopen(req) as r:
        assert r.url.endswith("/_elastilite/console")
        assert r.headers["Content-Type"].startswith("text/html")
        page = r.read().decode()
    assert "<script" in page and "src=" not in page.split("<script", 1)[1].split(">", 1)[0]
    # Self-contained: nothing loaded from elsewhere (the SVG namespace is only a name).
    rest = page.replace("http://www.w3.org/2000/svg", "")
    assert "http://" not in rest and "https://" not in rest
