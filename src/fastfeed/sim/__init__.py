"""An Upstox-compatible feed simulator: market-data feed v3 (protobuf) and portfolio stream feed
(JSON) on a local port, with Upstox's authorization flow, silent caps and fault switches.

It stands alone, as Upstox does: it builds frames with fastfeed's generated protobuf classes and
knows nothing of the client.
"""
import logging

from .counters import Counters
from .faults import Faults
from .prices import universe
from .runner import SimulatorThread
from .server import Simulator

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Counters", "Faults", "Simulator", "SimulatorThread", "universe"]
