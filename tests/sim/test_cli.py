"""`python -m fastfeed sim`: URL on the first line, serves, exits cleanly on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from sim_helpers import connect, recv_feed, request, run


def test_cli_prints_the_url_first_serves_and_stops_on_sigterm(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastfeed", "sim", "--port", "0", "--token", "T", "--tls",
         "--ca-file", str(ca), "--rate", "100", "--instruments", "10", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("wss://127.0.0.1:")

        async def main() -> None:
            import ssl
            ctx = ssl.create_default_context(cafile=str(ca))
            async with connect(base + "/v3/feed/market-data-feed", "T", ssl=ctx) as ws:
                assert (await recv_feed(ws)).type == 2
                await ws.send(request("sub", ["NSE_EQ|INE002A01018"], "ltpc"))
                assert "NSE_EQ|INE002A01018" in (await recv_feed(ws)).feeds
        run(main())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert str(ca) in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
