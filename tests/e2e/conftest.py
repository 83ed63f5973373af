"""Start the real elastilite binary for the end-to-end tests.

The binary is taken from ELASTILITE_BIN, else target/debug/elastilite (built by
`cargo build` before pytest runs; tests/run does both).
"""
import itertools
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import boto3
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("ELASTILITE_BIN", os.path.join(ROOT, "target", "debug", "elastilite"))
_counter = itertools.count()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra):
        self.data_dir = tempfile.mkdtemp(prefix="elastilite-e2e-")
        n = next(_counter)
        self.loopback_base = f"127.{230 + (os.getpid() % 20)}.{1 + n % 250}.1"
        self.extra = list(extra)
        self.proc = None
        self.start()

    def start(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [BIN, "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--loopback-base", self.loopback_base, *self.extra],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(self.endpoint + "/_elastilite/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("elastilite did not start")
            time.sleep(0.02)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def client(self, region="us-east-1"):
        return boto3.client(
            "elasticache", endpoint_url=self.endpoint, region_name=region,
            aws_access_key_id="test", aws_secret_access_key="test",
        )

    def aws(self, *args, check=True):
        """Run aws-cli against this server; returns CompletedProcess."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_DEFAULT_REGION="us-east-1")
        return subprocess.run(["aws", "--endpoint-url", self.endpoint, "elasticache", *args],
                              capture_output=True, text=True, env=env, check=check, timeout=120)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def slow_server():
    s = Server("--provision-delay-ms", "300")
    yield s
    s.stop()


def wait_available(client, cluster_id):
    # The real waiter, with a short delay so tests stay fast.
    client.get_waiter("cache_cluster_available").wait(
        CacheClusterId=cluster_id, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return client.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)["CacheClusters"][0]
