"""Replaying the pools' entries: each decision made by a manager of the pool at
that point of the log, once; each grant answering a request preceded by enough
approvals; each request resolved once; and the levy rules in force, against which
a signed transfer's levy leg is checked. Pure, like the rest of the replay."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

ENTRY_TYPES = frozenset(
    {
        "pool",
        "pool_referral",
        "pool_request",
        "pool_decision",
        "pool_grant",
        "pool_request_resolution",
        "levy_rule",
        "schedule",
        "currency_reserve",
        "reserve",
        "limit_defaults",
        "overflow",
    }
)
REQUEST_STATES = frozenset({"paid", "declined", "withdrawn"})
BASIS_POINTS = 10_000


class PoolEntryError(Exception):
    """What the entry says is impossible at its position (the replay names it)."""


@dataclass
class PoolState:
    managers: frozenset[str]
    approvals_required: int


@dataclass
class RequestState:
    pool: str
    state: str = "open"
    approvals: set[str] = field(default_factory=set)
    declines: set[str] = field(default_factory=set)
    paid: bool = False


@dataclass
class LevyState:
    """A rule in force: its unit (id), category, credited account and terms."""

    unit: str
    category: str | None
    account: str
    rate_bps: int
    fixed_amount: int
    paid_by: str


@dataclass
class ReserveState:
    """A euro-backed currency: its issuance account and the reserve and fees."""

    issuance_account: str
    reserve: int = 0
    fees: int = 0


class HasBalance(Protocol):
    balance: int


@dataclass
class PoolsReplay:
    pools: dict[str, PoolState] = field(default_factory=dict)
    requests: dict[str, RequestState] = field(default_factory=dict)
    referrals: set[tuple[str, str]] = field(default_factory=set)
    levies: dict[str, LevyState] = field(default_factory=dict)
    # Periodic policies in force (demurrage, expiry, fees, donations), by id.
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (unit, kind of owner) -> (min, max) for accounts opened from then on.
    limit_defaults: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    # Unit id -> the pool account that takes payments above a payee's maximum.
    overflows: dict[str, str] = field(default_factory=dict)
    # Euro-backed currencies by unit id.
    reserves: dict[str, ReserveState] = field(default_factory=dict)

    def apply(
        self,
        entry: dict[str, Any],
        transactions: set[str],
        accounts: Mapping[str, HasBalance],
    ) -> None:
        kind = entry["type"]
        if kind == "pool":
            self.pools[entry["pool"]] = PoolState(
                managers=frozenset(entry["managers"]),
                approvals_required=int(entry["approvals_required"]),
            )
        elif kind == "pool_referral":
            key = (entry["pool"], entry["member"])
            if entry["referred"]:
                self.referrals.add(key)
            else:
                self.referrals.discard(key)
        elif kind == "pool_request":
            self._open(entry)
        elif kind == "pool_decision":
            self._decide(entry)
        elif kind == "pool_grant":
            self._grant(entry, transactions)
        elif kind == "pool_request_resolution":
            self._resolve(entry)
        elif kind == "currency_reserve":
            known = self.reserves.get(entry["unit"])
            if known is None:
                self.reserves[entry["unit"]] = ReserveState(entry["issuance_account"])
            elif known.issuance_account != entry["issuance_account"]:
                raise PoolEntryError("a currency's issuance account changed")
        elif kind == "reserve":
            self._reserve(entry, transactions, accounts)
        elif kind == "overflow":
            if entry["account"] is None:
                self.overflows.pop(entry["unit"], None)
            else:
                self.overflows[entry["unit"]] = entry["account"]
        elif kind == "limit_defaults":
            self.limit_defaults[(entry["unit"], entry["kind"])] = (
                int(entry["min_balance"]),
                int(entry["max_balance"]),
            )
        elif kind == "schedule":
            if entry["retired"]:
                self.schedules.pop(entry["id"], None)
            else:
                self.schedules[entry["id"]] = entry
        else:
            assert kind == "levy_rule", f"not a pool entry: {kind}"
            self._levy(entry)

    def _open(self, entry: dict[str, Any]) -> None:
        if entry["pool"] not in self.pools:
            raise PoolEntryError(f"a request to pool {entry['pool']}, which has no charter")
        if entry["id"] in self.requests:
            raise PoolEntryError(f"request {entry['id']} is opened twice")
        self.requests[entry["id"]] = RequestState(pool=entry["pool"])

    def _open_request(self, request_id: str) -> RequestState:
        request = self.requests.get(request_id)
        if request is None:
            raise PoolEntryError(f"request {request_id} was never opened")
        if request.state != "open":
            raise PoolEntryError(f"request {request_id} is already {request.state}")
        return request

    def _decide(self, entry: dict[str, Any]) -> None:
        request = self._open_request(entry["request"])
        manager = entry["manager"]
        if manager not in self.pools[request.pool].managers:
            raise PoolEntryError(f"{manager} decides without being a manager of the pool")
        if manager in request.approvals or manager in request.declines:
            raise PoolEntryError(f"{manager} decides twice on request {entry['request']}")
        if entry["decision"] == "approve":
            request.approvals.add(manager)
        elif entry["decision"] == "decline":
            request.declines.add(manager)
        else:
            raise PoolEntryError(f"a decision {entry['decision']!r}")

    def _grant(self, entry: dict[str, Any], transactions: set[str]) -> None:
        if entry["pool"] not in self.pools:
            raise PoolEntryError(f"a grant from pool {entry['pool']}, which has no charter")
        if entry["transaction"] not in transactions:
            raise PoolEntryError(f"a grant records transaction {entry['transaction']}, not logged")
        if entry["request"] is None:
            if entry["granted_by"] not in self.pools[entry["pool"]].managers:
                raise PoolEntryError("a direct grant by someone who is not a manager of the pool")
            return
        request = self._open_request(entry["request"])
        required = self.pools[request.pool].approvals_required
        if len(request.approvals) < required:
            raise PoolEntryError(
                f"request {entry['request']} is paid with {len(request.approvals)} approvals;"
                f" the pool requires {required}"
            )
        request.paid = True

    def _resolve(self, entry: dict[str, Any]) -> None:
        request = self._open_request(entry["id"])
        state = entry["state"]
        if state not in REQUEST_STATES:
            raise PoolEntryError(f"a request resolved as {state!r}")
        if (state == "paid") != request.paid:
            raise PoolEntryError(f"request {entry['id']} is {state} but its grant says otherwise")
        request.state = state

    def _levy(self, entry: dict[str, Any]) -> None:
        if entry["retired"]:
            self.levies.pop(entry["id"], None)
            return
        self.levies[entry["id"]] = LevyState(
            unit=entry["unit"],
            category=entry["category"],
            account=entry["account"],
            rate_bps=int(entry["rate_bps"]),
            fixed_amount=int(entry["fixed_amount"]),
            paid_by=entry["paid_by"],
        )

    def _reserve(
        self,
        entry: dict[str, Any],
        transactions: set[str],
        accounts: Mapping[str, HasBalance],
    ) -> None:
        """Euros in or out with their transaction; after it, the currency in
        circulation is the reserve plus the fees recorded."""
        reserve = self.reserves.get(entry["unit"])
        if reserve is None:
            raise PoolEntryError(f"a reserve movement of unit {entry['unit']}, not euro-backed")
        if entry["transaction"] not in transactions:
            raise PoolEntryError(f"a reserve movement for {entry['transaction']}, not logged")
        euros, fee = int(entry["euros"]), int(entry["fee"])
        if entry["kind"] == "issuance":
            reserve.reserve += euros
        else:
            reserve.reserve -= euros + fee
            reserve.fees += fee
        account = accounts.get(reserve.issuance_account)
        circulation = -account.balance if account is not None else 0
        if reserve.reserve < 0 or circulation != reserve.reserve + reserve.fees:
            raise PoolEntryError(
                f"currency in circulation {circulation} is not the reserve {reserve.reserve}"
                f" plus fees {reserve.fees}"
            )

    def levies_possible(self, account: str, amount: int) -> set[int]:
        """The levies a rule in force crediting `account` takes on `amount`."""
        return {
            amount * rule.rate_bps // BASIS_POINTS + rule.fixed_amount
            for rule in self.levies.values()
            if rule.account == account
        }
