"""The Portfolio Stream Feed's updates as immutable typed records.

One record class per `update_type` (`order`, `position`, `holding`, `gtt_order`), each a frozen
`msgspec.Struct` whose field names are the JSON keys Upstox documents. `fastfeed.portfolio.decode`
turns a text frame into one of them in a single pass of msgspec's C decoder.

Conventions, the same in every record:

- A key the frame leaves out, or sends as `null`, is `None`. Only a few fields per type are
  required (see `REQUIRED`); the rest are `X | None = None`, so a sparse frame still decodes.
- Quantities are `int`; prices and amounts are `float` (a JSON `0` decodes to `0.0`).
- Order times (`order_timestamp`, `exchange_timestamp`) are `datetime`s carrying IST (+05:30), the
  wall time exactly as Upstox wrote it; the text as sent stays in `order_timestamp_raw` /
  `exchange_timestamp_raw`. They are parsed on first access, so a frame whose time is in a format
  we do not know still decodes; such a time reads as `None` while its raw text stays reachable.
- GTT times (`expires_at`, `created_at`) stay the epoch microseconds Upstox sends; the properties
  `expires_datetime` and `created_datetime` give them as UTC-aware `datetime`s, exactly.
- Deprecated duplicates are accepted and mapped: an order's `user_id` falls back to `userId` and
  `trading_symbol` to `tradingsymbol` when only the old name is sent. Both keys stay fields.
- Keys this version does not know are never fatal: `record.extra` returns them as a read-only
  mapping (empty when there are none), parsed lazily from `record.raw`, the frame the record came
  from.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar, Mapping, Union

import msgspec
from msgspec.structs import force_setattr

__all__ = [
    "GttRule",
    "GttUpdate",
    "HoldingUpdate",
    "IST",
    "OrderUpdate",
    "PortfolioUpdate",
    "PositionUpdate",
    "REQUIRED",
]

#: India Standard Time. A fixed offset is exact: India has had no daylight saving since 1945.
IST = timezone(timedelta(hours=5, minutes=30), "IST")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def _ist(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    # Upstox sends IST wall time without an offset; should one ever come, it is honoured.
    return when.replace(tzinfo=IST) if when.tzinfo is None else when.astimezone(IST)


def _utc_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


class _Record(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """What every record (and GTT rule) shares: unknown keys and the source frame, reachable.

    `dict=True` gives each instance a `__dict__`. The decoder puts the frame there (`raw`); the
    parsed times and the unknown keys (`extra`) are cached there on first access.
    """

    @property
    def extra(self) -> Mapping[str, Any]:
        """The frame's keys this type does not declare, with their JSON values (empty if none),
        as a read-only mapping.

        Parsed from `raw` on first access and cached: a decode pays nothing for it. Empty for a
        record built by hand. Not kept by pickling or msgspec encoding.
        """
        d = self.__dict__
        extra = d.get("_extra")
        if extra is None:
            raw = d.get("_raw")
            extra = d["_extra"] = _NO_EXTRA if raw is None else self._unknown_keys(raw)
        return extra

    @property
    def raw(self) -> str | bytes | None:
        """The frame this record was decoded from (None for a record built by hand)."""
        return self.__dict__.get("_raw")

    def _unknown_keys(self, raw: str | bytes) -> Mapping[str, Any]:
        obj = msgspec.json.decode(raw)
        index = self.__dict__.get("_index")
        if index is not None:  # a GTT rule: its object inside the frame
            obj = obj["rules"][index]
        known = _known_keys(type(self))
        extra = {k: v for k, v in obj.items() if k not in known}
        return MappingProxyType(extra) if extra else _NO_EXTRA


def _known_keys(cls: type) -> frozenset[str]:
    known = _KNOWN.get(cls)
    if known is None:
        config = cls.__struct_config__
        tag = (config.tag_field,) if config.tag_field else ()
        known = _KNOWN[cls] = frozenset(cls.__struct_encode_fields__ + tag)
    return known


_KNOWN: dict[type, frozenset[str]] = {}


class _Update(_Record, tag_field="update_type"):
    update_type: ClassVar[str]


class OrderUpdate(_Update, kw_only=True, tag="order"):
    """One order's state after a change (`update_type` `order`).

    Required: `order_id`, `status`, `instrument_token`. `status` is Upstox's text, e.g.
    `put order req received`, `validation pending`, `open`, `complete`, `rejected`, `cancelled`.
    """

    update_type: ClassVar[str] = "order"

    user_id: str | None = None
    userId: str | None = None  # deprecated duplicate of user_id
    exchange: str | None = None
    instrument_token: str
    instrument_key: str | None = None
    trading_symbol: str | None = None
    tradingsymbol: str | None = None  # deprecated duplicate of trading_symbol
    product: str | None = None
    order_type: str | None = None
    average_price: float | None = None
    price: float | None = None
    trigger_price: float | None = None
    quantity: int | None = None
    disclosed_quantity: int | None = None
    pending_quantity: int | None = None
    transaction_type: str | None = None
    order_ref_id: str | None = None
    exchange_order_id: str | None = None
    parent_order_id: str | None = None
    validity: str | None = None
    status: str
    is_amo: bool | None = None
    variety: str | None = None
    tag: str | None = None
    exchange_timestamp_raw: str | None = msgspec.field(default=None, name="exchange_timestamp")
    status_message: str | None = None
    order_id: str
    order_request_id: str | None = None
    order_timestamp_raw: str | None = msgspec.field(default=None, name="order_timestamp")
    filled_quantity: int | None = None
    guid: str | None = None
    placed_by: str | None = None
    status_message_raw: str | None = None

    def __post_init__(self) -> None:
        # Deprecated duplicates: the documented name wins, the old one fills in for it.
        if self.user_id is None and self.userId is not None:
            force_setattr(self, "user_id", self.userId)
        if self.trading_symbol is None and self.tradingsymbol is not None:
            force_setattr(self, "trading_symbol", self.tradingsymbol)

    @cached_property
    def order_timestamp(self) -> datetime | None:
        """`order_timestamp` as an IST-aware datetime (None if absent or not a known format)."""
        return _ist(self.order_timestamp_raw)

    @cached_property
    def exchange_timestamp(self) -> datetime | None:
        """`exchange_timestamp` as an IST-aware datetime (None until the exchange has the order)."""
        return _ist(self.exchange_timestamp_raw)


class PositionUpdate(_Update, kw_only=True, tag="position"):
    """One position's state (`update_type` `position`), keyed by (`instrument_token`, `product`).

    Required: `instrument_token`, `quantity` (net; negative when short).
    """

    update_type: ClassVar[str] = "position"

    instrument_token: str
    instrument_key: str | None = None
    average_price: float | None = None
    buy_value: float | None = None
    overnight_quantity: int | None = None
    exchange: str | None = None
    day_buy_value: float | None = None
    day_buy_price: float | None = None
    overnight_buy_amount: float | None = None
    overnight_buy_quantity: int | None = None
    day_buy_quantity: int | None = None
    day_sell_value: float | None = None
    day_sell_price: float | None = None
    overnight_sell_amount: float | None = None
    overnight_sell_quantity: int | None = None
    day_sell_quantity: int | None = None
    multiplier: float | None = None
    quantity: int
    product: str | None = None
    sell_value: float | None = None
    buy_price: float | None = None
    sell_price: float | None = None


class HoldingUpdate(_Update, kw_only=True, tag="holding"):
    """One holding's state (`update_type` `holding`), keyed by `instrument_token`.

    Required: `instrument_token`, `quantity`.
    """

    update_type: ClassVar[str] = "holding"

    instrument_token: str
    instrument_key: str | None = None
    average_price: float | None = None
    isin: str | None = None
    cnc_used_quantity: int | None = None
    collateral_quantity: int | None = None
    collateral_type: str | None = None
    collateral_update_quantity: int | None = None
    company_name: str | None = None
    haircut: float | None = None
    product: str | None = None
    quantity: int
    t1_quantity: int | None = None
    exchange: str | None = None


class GttRule(_Record, kw_only=True):
    """One leg of a GTT order: `strategy` ENTRY/TARGET/STOPLOSS, `status`
    PENDING/COMPLETED/FAILED/CANCELLED, `trigger_type` BELOW/ABOVE/IMMEDIATE. All optional.

    `raw` is the whole frame the rule came in; `extra` the rule's own unknown keys.
    """

    strategy: str | None = None
    status: str | None = None
    trigger_type: str | None = None
    trigger_price: float | None = None
    transaction_type: str | None = None
    message: str | None = None
    order_id: str | None = None
    trailing_gap: float | None = None


class GttUpdate(_Update, kw_only=True, tag="gtt_order"):
    """One GTT order's state (`update_type` `gtt_order`), with its rules as a tuple.

    Required: `gtt_order_id`, `rules`. `expires_at` / `created_at` are epoch microseconds.
    """

    update_type: ClassVar[str] = "gtt_order"

    type: str | None = None  # SINGLE or MULTIPLE
    exchange: str | None = None
    instrument_token: str | None = None
    quantity: int | None = None
    product: str | None = None
    gtt_order_id: str
    expires_at: int | None = None
    created_at: int | None = None
    rules: tuple[GttRule, ...]

    @cached_property
    def expires_datetime(self) -> datetime | None:
        """`expires_at` as a UTC-aware datetime, to the microsecond."""
        return _utc_us(self.expires_at)

    @cached_property
    def created_datetime(self) -> datetime | None:
        """`created_at` as a UTC-aware datetime, to the microsecond."""
        return _utc_us(self.created_at)


PortfolioUpdate = Union[OrderUpdate, PositionUpdate, HoldingUpdate, GttUpdate]

#: The keys each update type cannot do without; a frame missing one is a PortfolioDecodeError.
REQUIRED: dict[str, tuple[str, ...]] = {
    cls.update_type: tuple(f.encode_name for f in msgspec.structs.fields(cls) if f.required)
    for cls in (OrderUpdate, PositionUpdate, HoldingUpdate, GttUpdate)
}
