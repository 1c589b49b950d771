"""The sdist carries what a build and a test run need; the metadata says what the library needs."""
from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> tarfile.TarFile:
    out = tmp_path_factory.mktemp("dist")
    # No isolation: the test environment's setuptools; making an sdist compiles nothing.
    result = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                             "--skip-dependency-check", "--outdir", str(out), str(ROOT)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "license" not in result.stderr.lower() or "deprecat" not in result.stderr.lower()
    (path,) = out.glob("fastfeed-*.tar.gz")
    return tarfile.open(path)


def names(sdist: tarfile.TarFile) -> set[str]:
    return {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}


def test_the_sdist_has_the_schema_the_license_the_tests_and_the_benchmarks(
        sdist: tarfile.TarFile) -> None:
    files = names(sdist)
    assert {"proto/fastfeed_market_v3.proto", "LICENSE", "README.md", "pyproject.toml",
            "setup.py", "tests/conftest.py", "tests/package/test_packaging.py",
            "benchmarks/test_decode.py", "src/fastfeed/_decode.pyx", "src/fastfeed/py.typed",
            "src/fastfeed/schema.py"} <= files
    assert not [f for f in files if f.endswith((".c", ".so"))]


def test_the_metadata_has_an_spdx_license_and_only_the_librarys_dependencies(
        sdist: tarfile.TarFile) -> None:
    member = next(m for m in sdist.getmembers() if m.name.endswith("/PKG-INFO"))
    info = sdist.extractfile(member).read().decode()  # type: ignore[union-attr]
    assert "License-Expression: MIT" in info and "License-File: LICENSE" in info
    required = {line.split(":", 1)[1].split(";")[0].split(">")[0].split("=")[0].strip()
                for line in info.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert required == {"picows", "uvloop", "numpy", "msgspec", "protobuf"}


def test_the_wheel_leaves_the_generated_c_out() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool = config["tool"]["setuptools"]
    assert "*.c" in tool["exclude-package-data"]["fastfeed"]
    assert not any(p.endswith(".c") for p in tool["package-data"]["fastfeed"])


def test_the_readme_first_command_installs_the_demo_extra() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    first = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].splitlines()[0]
    assert "pip install -e '.[demo]'" in first and "fastfeed demo" in first
    assert any(r.startswith("rich") for r in config["project"]["optional-dependencies"]["demo"])


def test_the_generated_code_loads_on_the_protobuf_floor() -> None:
    text = (ROOT / "src/fastfeed/proto/fastfeed_market_v3_pb2.py").read_text()
    version = next(line.split(":")[1].strip() for line in text.splitlines()
                   if line.startswith("# Protobuf Python Version:"))
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    floor = next(d for d in config["project"]["dependencies"] if d.startswith("protobuf"))
    assert floor == f"protobuf>={version}" and version.startswith("5.")
