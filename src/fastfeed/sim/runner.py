"""Run a Simulator on its own event loop in a background thread, for synchronous code and tests."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

from fastfeed.loop import new_event_loop

from .redact import redacting_logger
from .server import Simulator

log = redacting_logger(__name__)  # no token may reach a log, even by mistake


class SimulatorThread:
    """`with SimulatorThread(**simulator_kwargs) as sim:` starts a Simulator in a daemon thread
    and hands back the Simulator itself; leaving the block stops it and joins the thread."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self.sim: Simulator | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> Simulator:
        self._thread = threading.Thread(target=self._main, name="fastfeed-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the simulator did not start in time")
        if self._error is not None:
            raise self._error
        assert self.sim is not None
        return self.sim

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop closed in between
                pass
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the simulator thread did not stop within %.1f s", timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` (or await it, if it returns an awaitable) on the simulator's loop."""
        assert self._loop is not None

        async def run() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        loop = self._loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        self.sim = Simulator(**self._kwargs)
        await self.sim.start()
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self.sim.stop()
