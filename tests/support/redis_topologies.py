"""Redis beyond one server, for tests: a Redis Cluster of three masters, and a master with one
replica watched by a Sentinel; Debian's redis-server on free loopback ports."""

import os
from pathlib import Path
from typing import Self

import redis

from tests.support.processes import ListeningProcess, RedisServer, free_port, poll_until

SLOTS = 16384
SENTINEL_SERVICE = "mymaster"


class ClusterNode(RedisServer):
    """One cluster-enabled redis-server; its cluster bus gets a free port of its own (the
    default, port + 10000, may be taken or out of range)."""

    def __init__(self, workdir: Path) -> None:
        self.bus_port = free_port()
        cluster = ["--cluster-enabled", "yes", "--cluster-port", str(self.bus_port)]
        super().__init__(workdir, [*cluster, "--cluster-config-file", str(workdir / "nodes.conf")])

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)


class RedisClusterSet:
    """Three masters sharing the slots; start() returns once every node says cluster_state:ok."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.nodes = [ClusterNode(workdir / f"node{i}") for i in range(size)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        clients = [node.client() for node in self.nodes]
        try:
            share = SLOTS // len(self.nodes)
            for i, client in enumerate(clients):
                last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
                client.cluster("SET-CONFIG-EPOCH", i + 1)
                client.cluster("ADDSLOTSRANGE", i * share, last)
            for node in self.nodes[1:]:
                clients[0].cluster("MEET", "127.0.0.1", node.port, node.bus_port)
            poll_until(lambda: all(_cluster_ok(client) for client in clients), bool, 30)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_ok(client: redis.Redis) -> bool:
    info = client.cluster("INFO")
    return isinstance(info, dict) and info.get("cluster_state") == "ok"


def _promotable(replicas: list[dict[str, object]]) -> bool:
    """Whether the Sentinel has seen a replica answer and follow its master (it promotes no
    other)."""
    return any(r["flags"] == "slave" and r["master-link-status"] == "ok" for r in replicas)


class SentinelProcess(ListeningProcess):
    """`redis-server --sentinel` watching the master on `master_port` (a quorum of one)."""

    def __init__(self, workdir: Path, master_port: int) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "sentinel.conf"  # a Sentinel rewrites its configuration file
        config.write_text(
            f"bind 127.0.0.1\nport {self.port}\ndir {workdir}\n"
            f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 2000\n"
            f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
        )
        argv = ["redis-server", str(config), "--sentinel"]
        super().__init__(argv, workdir / "sentinel.log", os.environ)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)


class SentinelSet:
    """A master, its replica and a Sentinel; start() returns once the Sentinel could promote
    the replica."""

    def __init__(self, workdir: Path) -> None:
        for name in ("master", "replica"):
            (workdir / name).mkdir(parents=True, exist_ok=True)
        self.master = RedisServer(workdir / "master")
        self.replica = RedisServer(workdir / "replica")
        self._workdir = workdir
        self.sentinel: SentinelProcess | None = None

    @property
    def url(self) -> str:
        assert self.sentinel is not None
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SENTINEL_SERVICE}/0"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        with redis.Redis(port=self.replica.port, decode_responses=True) as replica:
            replica.replicaof("127.0.0.1", self.master.port)
            poll_until(lambda: replica.info("replication")["master_link_status"], "up".__eq__, 30)
        # Started after the replica is attached, so its first look at the master finds it.
        self.sentinel = SentinelProcess(self._workdir / "sentinel", self.master.port)
        self.sentinel.start()
        with self.sentinel.client() as sentinel:
            poll_until(lambda: sentinel.sentinel_slaves(SENTINEL_SERVICE), _promotable, 30)

    def master_port(self) -> int:
        """The master's port, as the Sentinel names it."""
        assert self.sentinel is not None
        with self.sentinel.client() as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
        return int(port)

    def failover(self) -> int:
        """Promotes the replica; returns the new master's port once the Sentinel names it."""
        assert self.sentinel is not None
        before = self.master_port()
        with self.sentinel.client() as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SENTINEL_SERVICE)
        return poll_until(self.master_port, lambda port: port != before, 30)

    def stop(self) -> None:
        if self.sentinel is not None:
            self.sentinel.stop()
        self.replica.stop()
        self.master.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
