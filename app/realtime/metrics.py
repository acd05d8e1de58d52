"""Prometheus metrics of the WebSocket hub."""

from prometheus_client import Counter, Gauge, Histogram

WS_CONNECTIONS = Gauge(
    "botsmith_websocket_connections",
    "Open WebSocket connections.",
    multiprocess_mode="livesum",
)
WS_MESSAGES = Counter(
    "botsmith_websocket_messages",
    "WebSocket messages by direction (in, out).",
    ["direction"],
)
WS_DROPPED = Counter(
    "botsmith_websocket_slow_consumers_dropped",
    "WebSocket connections closed because their send queue was full.",
)
WS_FANOUT_LATENCY = Histogram(
    "botsmith_websocket_fanout_latency_seconds",
    "From an event's publication to its queueing for a subscribed socket.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
