"""Start-up stays light: matplotlib (~30 MB of RSS) is imported only when a chart is drawn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_importing_the_app_does_not_import_matplotlib() -> None:
    code = (
        "import sys, bot.app, bot.__main__, handlers.insight\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')[:3])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_drawing_a_chart_imports_it_on_first_use() -> None:
    code = (
        "import sys, bot.insight\n"
        "png = bot.insight.draw_curves('t', {'loss': [(0.0, 1.0), (1.0, 0.5)]})\n"
        "print(png[:4] == b'\\x89PNG', 'matplotlib' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == "True True", out.stderr[-2000:]
