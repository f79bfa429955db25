"""The Redis bus between A (maker) and B (hedger): hedge requests, outcomes, heartbeats, pause, dead letters,
and the rate-limit budget they may share (`budget`).

`messages` defines what is said (versioned, strictly validated JSON); `client.Bus` says it through Redis. See
`client` for the key and channel layout and for what each method raises.
"""

from hedge_strategy.bus.budget import SharedBudget, shared_budget
from hedge_strategy.bus.client import GROUP, Bus, BusKeys, DeadLetter, Delivery
from hedge_strategy.bus.messages import (
    FAILED,
    FILLED,
    SCHEMA_VERSION,
    BusMessageError,
    HedgeOutcome,
    HedgeRequest,
    PauseState,
    PositionReport,
    now_ms,
    opposite_side,
    request_id_for,
)
from hedge_strategy.bus.outcomes import OutcomeSubscription, OutcomeWaiter, ProgressCallback

__all__ = [
    "FAILED",
    "FILLED",
    "GROUP",
    "SCHEMA_VERSION",
    "Bus",
    "BusKeys",
    "BusMessageError",
    "DeadLetter",
    "Delivery",
    "HedgeOutcome",
    "HedgeRequest",
    "OutcomeSubscription",
    "OutcomeWaiter",
    "PauseState",
    "PositionReport",
    "ProgressCallback",
    "SharedBudget",
    "now_ms",
    "opposite_side",
    "request_id_for",
    "shared_budget",
]
