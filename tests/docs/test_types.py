"""mypy --strict passes on the README's examples and on a typical user script (user_script.py),
which also runs against the embedded simulator."""
from __future__ import annotations

import inspect
import pydoc
import subprocess
import sys
from pathlib import Path

from fastfeed import FeedDecoder

from readme_blocks import blocks

HERE = Path(__file__).resolve().parent


def test_mypy_strict_passes_on_the_readme_and_a_user_script(tmp_path: Path) -> None:
    files = [HERE / "user_script.py"]
    for line, code in blocks():
        path = tmp_path / f"readme_line_{line}.py"
        path.write_text(code, encoding="utf-8")
        files.append(path)
    # strict, as a careful user runs it; the official SDK ships no types, so a user who imports
    # it (the compat section's first example) says so once, as here.
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n\n[mypy-upstox_client.*]\nignore_missing_imports = True\n")
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config),
                             "--no-error-summary", "--cache-dir", str(tmp_path / "cache"),
                             *map(str, files)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_user_script_runs() -> None:
    result = subprocess.run([sys.executable, str(HERE / "user_script.py")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mode full" in result.stdout


def test_help_shows_the_decoders_arguments() -> None:
    text = pydoc.render_doc(FeedDecoder)
    assert "max_instruments=4096" in text and "ring_capacity=65536" in text
    assert list(inspect.signature(FeedDecoder).parameters) == ["max_instruments", "ring_capacity"]
