"""Real applications against a node created through the API, and against Debian's
redis-server in the same test: the outcomes must be the same."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
import redis

from conftest import free_port, wait_available

HERE = os.path.dirname(__file__)


@pytest.fixture
def real_redis():
    """Debian's redis-server on a random port (required under CI)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server not installed")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--maxmemory-policy", "noeviction"],
                            stdout=subprocess.DEVNULL)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(timeout=10)


def queue_node(server):
    """A Redis node configured as queue libraries require (noeviction)."""
    ec = server.client()
    ec.create_cache_parameter_group(CacheParameterGroupName="queues", CacheParameterGroupFamily="redis7",
                                    Description="job queues")
    ec.modify_cache_parameter_group(CacheParameterGroupName="queues", ParameterNameValues=[
        {"ParameterName": "maxmemory-policy", "ParameterValue": "noeviction"}])
    ec.create_cache_cluster(CacheClusterId="queues", Engine="redis", CacheParameterGroupName="queues")
    ep = wait_available(ec, "queues")["CacheNodes"][0]["Endpoint"]
    return ep["Address"], ep["Port"]


def run_bullmq(host, port, jobs):
    out = subprocess.run(["node", os.path.join(HERE, "bullmq_jobs.js"), host, str(port), str(jobs)],
                         capture_output=True, text=True, timeout=240, cwd=HERE)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_bullmq_processes_jobs_with_retries_and_delays(server, real_redis):
    host, port = queue_node(server)
    jobs = 10_000
    ours = run_bullmq(host, port, jobs)
    theirs = run_bullmq(*real_redis, jobs)
    # What obliterate leaves behind is the same on both.
    ours["keys_left"] = sorted(redis.Redis(host=host, port=port).keys("*"))
    theirs["keys_left"] = sorted(redis.Redis(*real_redis).keys("*"))
    print("bullmq elapsed ms: ours", ours["elapsedMs"], "redis-server", theirs["elapsedMs"])
    for r in (ours, theirs):
        r.pop("elapsedMs")
    assert ours == theirs
    assert ours["completed"] == jobs
    assert ours["sum"] == sum(2 * i for i in range(jobs))
    assert ours["retried"] == jobs // 10
    assert ours["counts"]["completed"] == jobs and ours["counts"]["failed"] == 0
