"""`import fastfeed` is lazy, `fastfeed.sim` loads no client module, and each CLI command loads only
itself: checked on `sys.modules` of a fresh interpreter."""
from __future__ import annotations

import json
import subprocess
import sys

import fastfeed

CLIENT = ("fastfeed.market", "fastfeed.transport", "fastfeed.portfolio", "fastfeed._listener")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return {m for m in json.loads(out.stdout.splitlines()[-1]) if m.startswith("fastfeed")}


def client_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith(CLIENT)}


def test_import_fastfeed_loads_nothing_but_the_package() -> None:
    assert loaded_after("import fastfeed") == {"fastfeed"}


def test_a_name_loads_its_module_on_first_use() -> None:
    modules = loaded_after("import fastfeed; fastfeed.FeedDecoder; fastfeed.Quote")
    assert {"fastfeed._decode", "fastfeed.quote"} <= modules
    assert not client_modules(modules)


def test_the_simulator_stands_alone() -> None:
    modules = loaded_after("import fastfeed.sim\nfrom fastfeed.sim import Simulator, SimulatorThread\n"
                           "with SimulatorThread() as sim: pass")
    assert "fastfeed.sim.server" in modules
    assert not client_modules(modules), client_modules(modules)


def test_the_sim_command_loads_no_client() -> None:
    modules = loaded_after("import fastfeed.__main__ as m\ntry:\n    m.main(['sim', '--help'])\n"
                           "except SystemExit:\n    pass")
    assert "fastfeed.cli.sim" in modules
    assert not client_modules(modules) and not {"fastfeed.cli.demo", "fastfeed.cli.bench",
                                                "fastfeed.cli.watch"} & modules


def test_every_public_name_is_listed_and_reachable() -> None:
    assert set(fastfeed.__all__) == set(fastfeed._WHERE)
    assert set(fastfeed.__all__) <= set(dir(fastfeed))
    for name in fastfeed.__all__:
        assert getattr(fastfeed, name) is getattr(__import__(fastfeed._WHERE[name], fromlist=[name]), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        fastfeed.NoSuchThing  # type: ignore[attr-defined]
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("no AttributeError")
