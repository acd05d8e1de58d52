"""Writes the widget's current versioned path and Subresource Integrity hash into the README
(run by `make widget-hash` after changing app/widget/static/widget.js; a test checks them)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.widget.assets import widget_script  # noqa: E402


def main() -> None:
    readme = ROOT / "README.md"
    script = widget_script()
    text = re.sub(r"/widget/[0-9a-f]{12}/widget\.js", script.path, readme.read_text())
    text = re.sub(r"sha384-[A-Za-z0-9+/=]+", script.integrity, text)
    readme.write_text(text)
    print(f"README: {script.path} {script.integrity}")


if __name__ == "__main__":
    main()
