"""The RAG evaluation set: ten pages of the PostgreSQL 15 documentation and questions on them.

`pages.txt` names the pages (one HTML file name a line; its first comment line is the directory
they are read from) and `cases.json` holds the questions. Import it as `bench.rag.dataset` with
the repository root on `sys.path`.
"""

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGES_FILE = HERE / "pages.txt"
CASES_FILE = HERE / "cases.json"


def page_paths(pages_file: Path = PAGES_FILE) -> list[Path]:
    """The corpus pages, in the order of pages.txt, under the directory its comment names."""
    lines = [line.strip() for line in pages_file.read_text().splitlines() if line.strip()]
    comments = [line for line in lines if line.startswith("#")]
    if not comments:
        raise ValueError(f"{pages_file}: the first line must be `# <directory of the pages>`")
    directory = Path(comments[0].removeprefix("#").strip())
    return [directory / line for line in lines if not line.startswith("#")]


def load_cases(path: Path = CASES_FILE) -> list[dict[str, Any]]:
    """The questions: answerable ones carry `evidence` and `source`, the others `unanswerable`."""
    data = json.loads(Path(path).read_text())
    cases: list[dict[str, Any]] = data["cases"]
    return cases
