"""REDIS_URL's three forms, read once for the settings' check and for the client.

- `redis://[[user]:password@]host[:port][/db][?option=value...]` (`rediss://` for TLS): one
  server, read by redis-py itself.
- `redis+cluster://[[user]:password@]host[:port][,host[:port]...][/][?...]`
  (`rediss+cluster://`): a Redis Cluster, discovered from any of the listed nodes; database 0
  only, as Redis Cluster has no other.
- `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?...]`
  (`rediss+sentinel://`): the master that the listed Sentinels name `service`, followed through
  failovers. The credentials are the data nodes'; the Sentinels are asked without any.

Ports default to 6379, and to 26379 for Sentinels. The query options are redis-py's URL options
(`socket_timeout`, `ssl_cert_reqs`, ...), applied to every connection to a data node.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic_core import MultiHostUrl
from redis.asyncio.connection import parse_url

SCHEMES = (
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)


class RedisMode(StrEnum):
    SERVER = "server"
    CLUSTER = "cluster"
    SENTINEL = "sentinel"


_DEFAULT_PORTS = {RedisMode.SERVER: 6379, RedisMode.CLUSTER: 6379, RedisMode.SENTINEL: 26379}


@dataclass(frozen=True, slots=True)
class RedisTarget:
    mode: RedisMode
    tls: bool
    nodes: tuple[tuple[str, int], ...]  # the server, the cluster's startup nodes or the Sentinels
    service: str  # the master's name, for Sentinel; "" otherwise
    # A data node's credentials, database and query options (TLS ones too), as redis-py reads them.
    options: dict[str, Any]


def parse_redis_url(url: MultiHostUrl) -> RedisTarget:
    """The URL's form and connection options; ValueError says what is wrong in one line,
    without the URL (it may carry a password)."""
    base, _, form = url.scheme.partition("+")
    mode = RedisMode(form or RedisMode.SERVER)
    hosts = url.hosts()
    if mode is RedisMode.SERVER and len(hosts) > 1:
        raise ValueError(
            f"{base}:// names one server; list several with {base}+cluster:// or {base}+sentinel://"
        )
    path = [part for part in (url.path or "").split("/") if part]
    service = ""
    if mode is RedisMode.SENTINEL:
        if not path:
            raise ValueError(
                f"{url.scheme}:// needs the master's name as its path: "
                f"{url.scheme}://host:26379/mymaster[/db]"
            )
        service, path = path[0], path[1:]
    if len(path) > 1 or (path and not path[0].isdigit()):
        raise ValueError(f"the path of a {url.scheme}:// URL is the database number")
    db = path[0] if path else "0"
    if mode is RedisMode.CLUSTER and int(db) != 0:
        raise ValueError("a Redis Cluster has database 0 only")
    port = _DEFAULT_PORTS[mode]
    nodes = tuple((str(host["host"]).strip("[]"), host["port"] or port) for host in hosts)
    return RedisTarget(mode, base == "rediss", nodes, service, _node_options(url, db))


def _node_options(url: MultiHostUrl, db: str) -> dict[str, Any]:
    """What redis-py reads from a one-server URL with this URL's credentials, database and query
    (not the host and port, which each node has its own, nor TLS, which `RedisTarget.tls` says)."""
    first = url.hosts()[0]
    username, password = first["username"] or "", first["password"]
    userinfo = f"{username}:{password}@" if password else (f"{username}@" if username else "")
    query = f"?{url.query}" if url.query else ""
    base = url.scheme.partition("+")[0]
    options: dict[str, Any] = dict(parse_url(f"{base}://{userinfo}{first['host']}/{db}{query}"))
    for key in ("host", "port", "connection_class"):
        options.pop(key, None)
    return options
