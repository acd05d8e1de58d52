"""What the benchmarks share: the bench FerretDB and Redis, and one definition of a percentile."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.analytics.service import percentile as _nearest_rank  # noqa: E402

SERVICES = ROOT / "scripts/services.sh"


def start_services() -> dict[str, str]:
    """Starts the bench FerretDB and Redis; their MONGO_URL and REDIS_URL, and a JWT_SECRET."""
    subprocess.run([str(SERVICES), "start", "bench"], check=True)
    lines = (ROOT / ".run/bench/env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def stop_services() -> None:
    subprocess.run([str(SERVICES), "stop", "bench"], check=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of a non-empty list (the same definition the analytics use)."""
    result = _nearest_rank(values, q)
    assert result is not None, "no values"
    return result
