"""Transaction intake shared by REST `sendTx`/`sendTxBatch` and WebSocket `jsonapi/sendtx`.

Order of checks for one transaction: injected rejection (nothing changes, nonce kept) -> `engine.accept_tx`
(validates, consumes the nonce) -> answer at once -> `engine.execute` after the tier's speed bump.
HTTP 200 means accepted by the API, not executed: the `sequencer_reject_next` fault makes the sequencer drop
an accepted tx at its execution time (no order ever appears), giving its nonce back at once if asked to. The
refusal shows in the account's transactions (`tx_history.py`: `GET /api/v1/tx`, the `account_tx` channel) with
`event_info.ae` {"code": 29500, "message": SEQUENCER_DROPPED} (the simulator's own code).
Every received transaction lands in a per-account log with its arrival time, execution time and the
server-side processing time (benchmarks and speed-bump tests read it through `/sim/txlog`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from .config import SimConfig
from .errors import BATCH_NONCES_NOT_CONSECUTIVE, INJECTED, INVALID_TX, SimError
from .faults import Faults
from .scheduler import SpeedBumps

log = logging.getLogger("sim.tx")

TX_LOG_PER_ACCOUNT = 5000
MALFORMED = INVALID_TX
# The answer's `message` is a JSON string about the volume quota (mainnet example: "didn't use volume quota";
# testnet 2026-07-30 capture: "Ratelimit is off"). The newest captures have no `volume_quota_remaining`.
RATELIMIT_MESSAGE = '{"ratelimit": "didn\'t use volume quota"}'
SEQUENCER_DROPPED = "rejected by the sequencer (fault sequencer_reject_next)"
TX_NAMES = {14: "create_order", 15: "cancel_order", 16: "cancel_all", 17: "modify_order"}


def now_us() -> int:
    return time.time_ns() // 1000


def tx_account(tx_info: Any) -> int | None:
    """The account a tx_info names (AccountIndex, or FromAccountIndex for transfers), if readable."""
    try:
        info = json.loads(tx_info) if isinstance(tx_info, str) else tx_info
        value = info.get("AccountIndex", info.get("FromAccountIndex"))
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class TxRecord:
    account_index: int | None
    tx_type: int
    arrival_us: int
    status: str  # accepted | rejected
    code: int = 200
    message: str = ""
    tx_hash: str = ""
    kind: str = ""
    api_key_index: int | None = None
    nonce: int | None = None
    delay_ms: int = 0
    answered_us: int | None = None
    executed_us: int | None = None
    processing_us: int | None = None  # server time from the request's arrival to its answer

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class TxGateway:
    def __init__(self, config: SimConfig, engine: Any, faults: Faults) -> None:
        self._config = config
        self._engine = engine
        self._faults = faults
        self.speed_bumps = SpeedBumps(self._execute)
        self._log: dict[int | None, deque[TxRecord]] = {}
        self._doomed: set[str] = set()  # tx hashes the sequencer will drop instead of executing

    # --- one transaction ------------------------------------------------------------------------------

    def submit(
        self, tx_type: int, tx_info: str, arrival_us: int, started: float
    ) -> tuple[dict[str, Any], TxRecord]:
        """Accept and schedule one tx. Returns (RespSendTx dict, log record); raises SimError when refused.

        `started` is the time.perf_counter() at which the request arrived: the record keeps the server-side
        processing time up to the answer.
        """
        account = tx_account(tx_info)
        record = TxRecord(account, tx_type, arrival_us, status="rejected")
        self._remember(record)
        try:
            return self._accept(record, tx_type, tx_info, arrival_us)
        finally:
            record.answered_us = now_us()
            record.processing_us = int((time.perf_counter() - started) * 1_000_000)

    def _accept(
        self, record: TxRecord, tx_type: int, tx_info: str, arrival_us: int
    ) -> tuple[dict[str, Any], TxRecord]:
        account = record.account_index
        try:
            injected = self._faults.take_sendtx_rejection(account)
            if injected is not None:
                raise SimError(injected[0], injected[1])
            accepted = self._engine.accept_tx(tx_type, tx_info, arrival_us)
        except SimError as exc:
            record.code, record.message = exc.code, exc.message
            log.info(
                "tx rejected: account %s type %s (%s) code %s %s; nothing changed",
                account,
                tx_type,
                TX_NAMES.get(tx_type, "?"),
                exc.code,
                exc.message,
            )
            raise
        record.status, record.tx_hash, record.kind = "accepted", accepted.tx_hash, accepted.kind
        record.account_index, record.api_key_index = accepted.account_index, accepted.api_key_index
        record.nonce = _nonce_of(tx_info)
        record.delay_ms = self._delay_ms(accepted)
        log.info(
            "tx accepted: account %s key %s nonce %s %s (%s) hash %s; executes in %d ms",
            accepted.account_index,
            accepted.api_key_index,
            record.nonce,
            TX_NAMES.get(tx_type, tx_type),
            accepted.kind,
            accepted.tx_hash[:16],
            record.delay_ms,
        )

        consume_nonce = self._faults.take_sequencer_reject(accepted.account_index)
        doomed = consume_nonce is not None
        if doomed:
            self._doomed.add(accepted.tx_hash)
            if not consume_nonce:
                self._engine.unconsume_nonce(accepted)

        def executed() -> None:
            if doomed:
                record.message = SEQUENCER_DROPPED + ("" if consume_nonce else "; nonce not consumed")
            else:
                record.executed_us = now_us()

        self.speed_bumps.submit(accepted.account_index, accepted, record.delay_ms, executed)
        response = {
            "code": 200,
            "message": RATELIMIT_MESSAGE,
            "tx_hash": accepted.tx_hash,
            "predicted_execution_time_ms": arrival_us // 1000 + record.delay_ms,
        }
        return response, record

    def blackholed(self, record: TxRecord) -> bool:
        """Whether the fault `blackhole_next_sendtx` takes this accepted tx: it executes, but its answer (HTTP
        or WebSocket) never comes. The caller then withholds the answer."""
        if not self._faults.take_blackhole(record.account_index):
            return False
        record.answered_us = None
        record.message = "blackholed: accepted, never answered"
        log.info("tx of account %s hash %s blackholed (fault): it executes, its answer is never sent",
                 record.account_index, record.tx_hash[:16])
        return True

    def _execute(self, accepted: Any) -> None:
        if accepted.tx_hash in self._doomed:
            self._doomed.discard(accepted.tx_hash)
            self._engine.discard(accepted, INJECTED, SEQUENCER_DROPPED)
            log.info(
                "tx dropped by the sequencer (fault): account %s %s hash %s; HTTP 200 was answered, "
                "nothing executes",
                accepted.account_index,
                TX_NAMES.get(accepted.tx_type, accepted.tx_type),
                accepted.tx_hash[:16],
            )
            return
        self._engine.execute(accepted)

    def _delay_ms(self, accepted: Any) -> int:
        return self._config.speed_bumps.delay_ms(self._engine.tier_of(accepted.account_index), accepted.kind)

    # --- batches --------------------------------------------------------------------------------------

    def submit_batch(
        self, tx_types: list[int], tx_infos: list[str], arrival_us: int, started: float
    ) -> tuple[dict[str, Any], list[TxRecord]]:
        """Transactions in order. The first refusal stops the batch and raises (the earlier ones stand)."""
        _check_batch_nonces(tx_infos)
        hashes: list[str] = []
        records: list[TxRecord] = []
        predicted = arrival_us // 1000
        for position, (tx_type, tx_info) in enumerate(zip(tx_types, tx_infos, strict=True)):
            try:
                response, record = self.submit(tx_type, tx_info, arrival_us, started)
            except SimError as exc:
                accepted = f"; the {position} before it were accepted" if position else ""
                raise SimError(
                    exc.code, f"tx {position} of the batch: {exc.message}{accepted}", exc.http_status
                ) from None
            hashes.append(response["tx_hash"])
            records.append(record)
            predicted = max(predicted, response["predicted_execution_time_ms"])
        return {
            "code": 200,
            "message": RATELIMIT_MESSAGE,
            "tx_hash": hashes,
            "predicted_execution_time_ms": predicted,
        }, records

    # --- the log --------------------------------------------------------------------------------------

    def _remember(self, record: TxRecord) -> None:
        entries = self._log.get(record.account_index)
        if entries is None:
            entries = self._log[record.account_index] = deque(maxlen=TX_LOG_PER_ACCOUNT)
        entries.append(record)

    def log_json(
        self, account_index: int | None = None, since_us: int = 0
    ) -> dict[str, list[dict[str, Any]]]:
        return {
            str(acct): [r.to_json() for r in entries if r.arrival_us >= since_us]
            for acct, entries in self._log.items()
            if account_index is None or acct == account_index
        }

    def clear(self) -> None:
        self.speed_bumps.cancel_all()
        self._log.clear()
        self._doomed.clear()


def _nonce_of(tx_info: str) -> int | None:
    try:
        nonce = json.loads(tx_info).get("Nonce")
    except (ValueError, AttributeError):
        return None
    return nonce if isinstance(nonce, int) else None


def _check_batch_nonces(tx_infos: list[str]) -> None:
    """Within a batch, each API key's nonces must follow one another (the venue's 21105). A tx_info that does
    not parse is left to the per-transaction checks."""
    last: dict[tuple[Any, Any], int] = {}
    for info in tx_infos:
        try:
            raw = json.loads(info)
            key, nonce = (raw.get("AccountIndex"), raw.get("ApiKeyIndex")), raw.get("Nonce")
        except (ValueError, AttributeError):
            continue
        if not isinstance(nonce, int):
            continue
        if key in last and nonce != last[key] + 1:
            raise SimError(
                BATCH_NONCES_NOT_CONSECUTIVE,
                f"batch nonces must be consecutive: {nonce} follows {last[key]} for api key {key[1]}",
            )
        last[key] = nonce


def parse_batch(tx_types_raw: Any, tx_infos_raw: Any) -> tuple[list[int], list[str]]:
    """`sendTxBatch` fields: tx_types `"[14, 15]"`, tx_infos `'["{...}", "{...}"]'` (strings or lists)."""
    try:
        tx_types = json.loads(tx_types_raw) if isinstance(tx_types_raw, str) else tx_types_raw
        tx_infos = json.loads(tx_infos_raw) if isinstance(tx_infos_raw, str) else tx_infos_raw
    except ValueError:
        raise SimError(MALFORMED, "tx_types and tx_infos must be JSON arrays") from None
    if not isinstance(tx_types, list) or not isinstance(tx_infos, list) or not tx_types:
        raise SimError(MALFORMED, "tx_types and tx_infos must be non-empty JSON arrays")
    if len(tx_types) != len(tx_infos):
        raise SimError(MALFORMED, f"tx_types has {len(tx_types)} entries but tx_infos has {len(tx_infos)}")
    if len(tx_types) > 50:
        raise SimError(MALFORMED, "a batch holds at most 50 transactions")
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in tx_types):
        raise SimError(MALFORMED, "tx_types must hold integers")
    infos = [json.dumps(i) if isinstance(i, dict) else i for i in tx_infos]
    if not all(isinstance(i, str) for i in infos):
        raise SimError(MALFORMED, "tx_infos must hold JSON strings")
    return tx_types, infos


def parse_tx_type(raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw)
    raise SimError(MALFORMED, f"tx_type must be an integer, got {raw!r}")
