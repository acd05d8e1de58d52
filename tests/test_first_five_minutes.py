"""The README's "first five minutes", run exactly as written against a dev-like stack (the API,
an ingestion worker, FerretDB and Redis), so the README cannot rot."""

import re
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.conftest import Services
from tests.support.processes import ROOT, ApiServer, IngestionWorker

BLOCK = re.compile(
    r"<!-- first-five-minutes.*?-->\s*```sh\n(?P<commands>.*?)```\s*<!-- /first-five-minutes -->",
    re.S,
)
README_API = "API=http://127.0.0.1:8000\n"


def readme_commands() -> str:
    found = BLOCK.search((ROOT / "README.md").read_text())
    assert found, "the README lost its first-five-minutes block"
    commands = found["commands"]
    assert commands.startswith(README_API)
    return commands


def test_the_first_five_minutes_of_the_readme_work_as_written(
    services: Services, tmp_path: Path
) -> None:
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
    }
    with ApiServer(tmp_path / "api", env, workers=2) as api, IngestionWorker(tmp_path, api.env):
        api.wait_ready()
        # The only change: the API's address (a free port here, 8000 under make dev).
        commands = readme_commands().replace(README_API, f"API={api.base_url}\n", 1)
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", commands],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "source: ready" in run.stdout
        assert '"answered":true' in run.stdout
        assert "24 months" in run.stdout

        page = (tmp_path / "botsmith-demo/index.html").read_text()
        found = re.search(r'<script src="([^"]+)" data-chatbot-id="([0-9a-f]+)" async>', page)
        assert found, page
        assert found[1] == f"{api.base_url}/widget.js"
        assert httpx.get(found[1]).status_code == 200
        config = httpx.get(
            f"{api.base_url}/api/public/chatbots/{found[2]}",
            headers={"Origin": "http://localhost:8080"},
        )
        assert config.status_code == 200
        assert config.headers["access-control-allow-origin"] == "http://localhost:8080"
