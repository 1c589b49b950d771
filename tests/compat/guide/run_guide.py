"""Runs one guide script as `python run_guide.py SCRIPT MARKET_URL PORTFOLIO_URL`: the URLs are
set on fastfeed.compat (the script itself is unchanged), the script runs as __main__ and returns
once its streamer has connected in the background; a line on stdin then disconnects every
streamer it made, after which the process ends by itself."""
import gc
import runpy
import sys

import fastfeed.compat
from fastfeed.compat.streamer import Streamer

fastfeed.compat.MARKET_DATA_URL, fastfeed.compat.PORTFOLIO_URL = sys.argv[2], sys.argv[3]
runpy.run_path(sys.argv[1], run_name="__main__")
print("main returned", flush=True)
sys.stdin.readline()
for streamer in [o for o in gc.get_objects() if isinstance(o, Streamer)]:
    streamer.disconnect()
