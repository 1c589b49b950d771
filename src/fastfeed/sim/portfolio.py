"""The portfolio stream feed: seeded order lifecycles, and the positions, holdings and GTT orders
that follow them, sent as the JSON text frames Upstox documents."""
from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .auth import PORTFOLIO, Grant
from .connection import Pacer, Session, now_ms
from .faults import Faults
from .prices import KNOWN, Market, stable_seed, universe
from .redact import redacting_logger

if TYPE_CHECKING:
    from .server import Simulator

log = redacting_logger(__name__)  # no token may reach a log, even by mistake

UPDATE_TYPES = ("order", "position", "holding", "gtt_order")
_MAX_LIVE_ORDERS = 16
_MAX_LIVE_GTTS = 8
_STEPS_PER_EVENT = 64  # a tick steps the book at most this often looking for a wanted update
_IST = 19_800


def _ist(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000 + _IST))


@dataclass
class _Order:
    order_id: str
    key: str
    symbol: str
    side: str
    product: str
    order_type: str
    quantity: int
    price: float
    status: str = "put order req received"
    filled: int = 0
    fill_value: float = 0.0
    exchange_order_id: str = ""
    exchange_ts: str | None = None
    message: str = ""


@dataclass
class _Position:
    buy_qty: int = 0
    buy_value: float = 0.0
    sell_qty: int = 0
    sell_value: float = 0.0


@dataclass
class _Gtt:
    gtt_id: str
    key: str
    quantity: int
    created_us: int
    rules: list[dict[str, Any]] = field(default_factory=list)


class PortfolioBook:
    """One account's day: orders move through their statuses, fills move positions and holdings.

    `step()` returns the updates one event produced (every type; the session keeps the wanted ones).
    The same seed gives the same sequence (timestamps aside).
    """

    def __init__(self, market: Market, seed: int, user_id: str = "SIM123") -> None:
        self.market = market
        self.user_id = user_id
        self.rng = random.Random(stable_seed(seed, "portfolio", user_id))
        self.keys = [k for k in list(KNOWN) + universe(40, seed) if k.startswith("NSE_EQ|")]
        self.keys = list(dict.fromkeys(self.keys))
        self.orders: dict[str, _Order] = {}
        self.positions: dict[str, _Position] = {}
        self.holdings: dict[str, tuple[int, float, int]] = {}  # key -> (qty, avg, t1_qty)
        self.gtts: dict[str, _Gtt] = {}
        self._serial = 0

    def _next_id(self, prefix: str = "") -> str:
        self._serial += 1
        return f"{prefix}2602{self.rng.randrange(10**6, 10**7)}{self._serial:05d}"

    def step(self) -> list[dict[str, Any]]:
        rng = self.rng
        ms = now_ms()
        r = rng.random()
        if r < 0.12 and len(self.gtts) < _MAX_LIVE_GTTS:
            return [self._new_gtt(ms)]
        if r < 0.2 and self.gtts:
            return self._advance_gtt(rng.choice(list(self.gtts)), ms)
        live = [o for o in self.orders.values()]
        if live and (r > 0.45 or len(live) >= _MAX_LIVE_ORDERS):
            return self._advance(rng.choice(live), ms)
        return [self._new_order(ms)]

    # -- orders -----------------------------------------------------------------------------
    def _new_order(self, ms: int, key: str | None = None, side: str | None = None,
                   quantity: int | None = None) -> dict[str, Any]:
        rng = self.rng
        key = key or rng.choice(self.keys)
        inst = self.market.get(key, ms)
        order_type = rng.choice(("MARKET", "LIMIT"))
        order = _Order(order_id=self._next_id(), key=key, symbol=f"{inst.symbol}-EQ",
                       side=side or rng.choice(("BUY", "SELL", "BUY")), product=rng.choice(("D", "I")),
                       order_type=order_type, quantity=quantity or rng.randint(1, 20),
                       price=0.0 if order_type == "MARKET" else inst.ltp)
        self.orders[order.order_id] = order
        return self._order_json(order, ms)

    def _advance(self, order: _Order, ms: int) -> list[dict[str, Any]]:
        rng = self.rng
        out: list[dict[str, Any]] = []
        if order.status == "put order req received":
            if rng.random() < 0.1:
                order.status = "rejected"
                order.message = "Insufficient funds. Required margin exceeds available margin."
            else:
                order.status = "open"
                order.exchange_order_id = f"1{rng.randrange(10**14, 10**15)}"
                order.exchange_ts = _ist(ms)
        elif order.status == "open":
            if order.filled == 0 and rng.random() < 0.12:
                order.status = "cancelled"
            else:
                left = order.quantity - order.filled
                qty = left if left == 1 or rng.random() < 0.6 else rng.randint(1, left - 1)
                inst = self.market.get(order.key, ms)
                inst.step(ms)
                order.filled += qty
                order.fill_value += qty * inst.ltp
                if order.filled == order.quantity:
                    order.status = "complete"
                out.append(self._order_json(order, ms))
                out.extend(self._fill(order, qty, inst.ltp))
                self._retire(order)
                return out
        out.append(self._order_json(order, ms))
        self._retire(order)
        return out

    def _retire(self, order: _Order) -> None:
        if order.status in ("complete", "rejected", "cancelled"):
            self.orders.pop(order.order_id, None)

    def _fill(self, order: _Order, qty: int, price: float) -> list[dict[str, Any]]:
        pos = self.positions.setdefault(order.key, _Position())
        if order.side == "BUY":
            pos.buy_qty += qty
            pos.buy_value += qty * price
        else:
            pos.sell_qty += qty
            pos.sell_value += qty * price
        out = [self._position_json(order.key, order.product, pos)]
        if order.product == "D":
            held, avg, t1 = self.holdings.get(order.key, (self.rng.randint(0, 50), price, 0))
            if order.side == "BUY":
                avg = (held * avg + qty * price) / (held + qty) if held + qty else price
                held, t1 = held + qty, t1 + qty
            else:
                held = max(0, held - qty)
            self.holdings[order.key] = (held, avg, t1)
            out.append(self._holding_json(order.key, held, avg, t1))
        return out

    def _order_json(self, o: _Order, ms: int) -> dict[str, Any]:
        avg = round(o.fill_value / o.filled, 2) if o.filled else 0
        return {
            "update_type": "order", "user_id": self.user_id, "userId": self.user_id,
            "exchange": "NSE", "instrument_token": o.key, "instrument_key": o.key,
            "trading_symbol": o.symbol, "tradingsymbol": o.symbol, "product": o.product,
            "order_type": o.order_type, "average_price": avg, "price": o.price, "trigger_price": 0,
            "quantity": o.quantity, "disclosed_quantity": 0,
            "pending_quantity": o.quantity - o.filled if o.status not in ("rejected", "cancelled") else 0,
            "transaction_type": o.side, "order_ref_id": f"{o.order_id[-8:]}{self._serial}",
            "exchange_order_id": o.exchange_order_id, "parent_order_id": None, "validity": "DAY",
            "status": o.status, "is_amo": False, "variety": "SIMPLE", "tag": None,
            "exchange_timestamp": o.exchange_ts, "status_message": o.message,
            "order_id": o.order_id, "order_request_id": "1", "order_timestamp": _ist(ms),
            "filled_quantity": o.filled, "guid": None, "placed_by": self.user_id,
            "status_message_raw": o.message or None,
        }

    def _position_json(self, key: str, product: str, p: _Position) -> dict[str, Any]:
        buy_price = round(p.buy_value / p.buy_qty, 3) if p.buy_qty else 0
        sell_price = round(p.sell_value / p.sell_qty, 3) if p.sell_qty else 0
        return {
            "update_type": "position", "instrument_token": key, "instrument_key": key,
            "average_price": buy_price if p.buy_qty >= p.sell_qty else sell_price,
            "buy_value": round(p.buy_value, 2), "overnight_quantity": 0, "exchange": "NSE_EQ",
            "day_buy_value": round(p.buy_value, 2), "day_buy_price": round(buy_price, 2),
            "overnight_buy_amount": 0, "overnight_buy_quantity": 0, "day_buy_quantity": p.buy_qty,
            "day_sell_value": round(p.sell_value, 2), "day_sell_price": round(sell_price, 2),
            "overnight_sell_amount": 0, "overnight_sell_quantity": 0, "day_sell_quantity": p.sell_qty,
            "multiplier": 1, "quantity": p.buy_qty - p.sell_qty, "product": product,
            "sell_value": round(p.sell_value, 2), "buy_price": buy_price, "sell_price": sell_price,
        }

    def _holding_json(self, key: str, qty: int, avg: float, t1: int) -> dict[str, Any]:
        inst = self.market.get(key, now_ms())
        isin = key.partition("|")[2]
        return {
            "update_type": "holding", "instrument_token": key, "instrument_key": key,
            "average_price": round(avg, 2), "isin": isin, "cnc_used_quantity": 0,
            "collateral_quantity": 0, "collateral_type": "WC", "collateral_update_quantity": 0,
            "company_name": f"{inst.symbol} LTD", "haircut": 0.21, "product": "D", "quantity": qty,
            "t1_quantity": t1, "exchange": "NSE",
        }

    # -- GTT orders (times in epoch microseconds) -------------------------------------------
    def _new_gtt(self, ms: int) -> dict[str, Any]:
        rng = self.rng
        key = rng.choice(self.keys)
        ltp = self.market.get(key, ms).ltp
        gtt = _Gtt(gtt_id=f"GTT-{self._next_id('C')}", key=key, quantity=rng.randint(1, 10),
                   created_us=ms * 1000)
        gtt.rules.append(self._rule("ENTRY", "BELOW", round(ltp * 0.99, 2), "BUY"))
        if rng.random() < 0.5:
            gtt.rules.append(self._rule("TARGET", "ABOVE", round(ltp * 1.05, 2), "SELL"))
            gtt.rules.append(self._rule("STOPLOSS", "BELOW", round(ltp * 0.95, 2), "SELL"))
        self.gtts[gtt.gtt_id] = gtt
        return self._gtt_json(gtt)

    @staticmethod
    def _rule(strategy: str, trigger: str, price: float, side: str) -> dict[str, Any]:
        return {"strategy": strategy, "status": "PENDING", "trigger_type": trigger,
                "trigger_price": price, "transaction_type": side, "message": None,
                "order_id": None, "trailing_gap": None}

    def _advance_gtt(self, gtt_id: str, ms: int) -> list[dict[str, Any]]:
        gtt = self.gtts.pop(gtt_id)
        entry = gtt.rules[0]
        out: list[dict[str, Any]] = []
        r = self.rng.random()
        if r < 0.6:
            entry["status"] = "COMPLETED"
            entry["message"] = "Order placed"
            order = self._new_order(ms, key=gtt.key, side="BUY", quantity=gtt.quantity)
            entry["order_id"] = order["order_id"]
            out.append(order)
        elif r < 0.8:
            entry["status"] = "FAILED"
            entry["message"] = "Order rejected by the exchange"
        else:
            for rule in gtt.rules:
                rule["status"] = "CANCELLED"
        out.insert(0, self._gtt_json(gtt))
        return out

    def _gtt_json(self, gtt: _Gtt) -> dict[str, Any]:
        return {
            "update_type": "gtt_order", "type": "MULTIPLE" if len(gtt.rules) > 1 else "SINGLE",
            "exchange": "NSE_EQ", "instrument_token": gtt.key, "quantity": gtt.quantity,
            "product": "D", "gtt_order_id": gtt.gtt_id,
            "expires_at": gtt.created_us + 364 * 86_400_000_000, "created_at": gtt.created_us,
            "rules": [dict(rule) for rule in gtt.rules],
        }


def parse_update_types(value: str | None) -> tuple[str, ...]:
    """`update_types` of the query string; unknown names are dropped, none at all means order."""
    if not value:
        return ("order",)
    wanted = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip() in UPDATE_TYPES))
    return wanted or ("order",)


class PortfolioSession(Session):
    kind = PORTFOLIO
    text_frames = True

    def __init__(self, sim: "Simulator", grant: Grant, faults: Faults, serial: int,
                 update_types: tuple[str, ...]) -> None:
        super().__init__(sim, grant, faults, serial)
        self.update_types = update_types
        self.book = PortfolioBook(sim.market, stable_seed(sim.seed, "account", serial))
        # Updates one book event produced beyond the first: at most a few, drained first.
        self._backlog: list[dict[str, Any]] = []

    def on_message(self, payload: bytes) -> None:
        # The portfolio feed takes no requests; count what arrives and move on.
        self.tally.bump("requests_malformed")

    def malformed_frame(self, valid: bytes, n: int) -> bytes:
        return valid[:-1]  # a JSON object without its closing brace

    def oversized_frame(self) -> bytes:
        # A real order update with a long padding field: valid JSON, far bigger than usual.
        order = self.book._new_order(now_ms())
        self.book.orders.pop(order["order_id"], None)
        padding = [order] * self.faults.oversized_instruments
        return json.dumps(order | {"oversized_padding": padding}).encode()

    def next_update(self) -> bytes | None:
        if self._backlog:
            return json.dumps(self._backlog.pop(0)).encode()
        for _ in range(_STEPS_PER_EVENT):
            for update in self.book.step():
                if update["update_type"] in self.update_types:
                    self._backlog.append(update)
            if self._backlog:
                return json.dumps(self._backlog.pop(0)).encode()
        return None

    async def drive(self) -> None:
        loop = asyncio.get_running_loop()
        pacer = Pacer(loop.time())
        while not self.closing:
            if not self.can_send():
                await self.wait_writable()
                continue
            rate = self.sim.portfolio_rate
            if not rate:
                await asyncio.sleep(0.1)
                continue
            now = loop.time()
            wait = pacer.wait(now)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            # A bounded batch, then the loop runs (reads, a lost connection, other sessions).
            for _ in range(pacer.take(now, rate)):
                if not self.can_send():
                    break
                frame = self.next_update()
                if frame is not None:
                    self.send_data(frame)
            await asyncio.sleep(0)
