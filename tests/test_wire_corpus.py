"""The wire corpus (tests/wire/) stays consistent: every file has a provenance row and every row a file,
every line is a well-formed record, and the channels and endpoints found so far stay covered."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.wire import (
    CORPUS_DIR,
    KINDS,
    PROVENANCE_KINDS,
    files,
    provenance,
    read_file,
    records,
)

WS_CHANNELS = {
    "account_all",
    "account_all_assets",
    "account_all_orders",
    "account_all_positions",
    "account_all_trades",
    "account_orders",
    "account_tx",
    "control",
    "height",
    "market_stats",
    "order_book",
    "sendtx",
    "ticker",
    "trade",
    "user_stats",
}
REST_ENDPOINTS = {
    "account",
    "accountActiveOrders",
    "accountInactiveOrders",
    "accountLimits",
    "accountOrders",
    "nextNonce",
    "orderBookDetails",
    "orderBookOrders",
    "orderBooks",
    "recentTrades",
    "sendTx",
    "trades",
    "tx",
}
# Channels whose corpus must hold at least one frame captured from the venue (not only docs/constructed).
CAPTURED_WS = WS_CHANNELS - {"account_orders"}
CAPTURED_REST = REST_ENDPOINTS - {"accountOrders", "nextNonce", "tx"}


def rel(path) -> str:
    return path.relative_to(CORPUS_DIR).as_posix()


def test_every_file_has_a_provenance_row_and_every_row_a_file() -> None:
    on_disk = {rel(p) for p in files()}
    listed = set(provenance())
    assert on_disk - listed == set(), "corpus files missing from the README provenance table"
    assert listed - on_disk == set(), "provenance rows naming files that do not exist"


def test_provenance_rows_are_complete() -> None:
    for row in provenance().values():
        assert row.kind in PROVENANCE_KINDS, row
        assert row.source and row.origin and row.captured, row
        if row.kind == "constructed":
            assert row.notes, f"{row.file}: a constructed file must say why"


@pytest.mark.parametrize("path", files(), ids=rel)
def test_every_line_is_a_record(path) -> None:
    lines = [t for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    assert lines, f"{rel(path)} is empty"
    for text in lines:
        obj = json.loads(text)
        assert isinstance(obj, dict)
        assert set(obj) <= {"kind", "name", "payload", "http_status"}, set(obj)
        assert obj["kind"] in KINDS
        assert isinstance(obj["name"], str) and obj["name"]
        assert isinstance(obj["payload"], dict)
        if "http_status" in obj:
            assert isinstance(obj["http_status"], int) and 100 <= obj["http_status"] < 600


@pytest.mark.parametrize("path", files(), ids=rel)
def test_file_place_matches_its_records(path) -> None:
    top, name, _ = rel(path).split("/")
    source = path.stem.split("_", 1)[0]
    assert source, rel(path)
    for rec in read_file(path):
        assert rec.kind == top and rec.name == name, f"{rel(path)}:{rec.line}"
        if rec.kind == "ws" and name not in ("control", "sendtx"):
            assert rec.payload["channel"].split(":")[0] == name, f"{rel(path)}:{rec.line}"


def test_coverage_of_channels_and_endpoints() -> None:
    assert {r.name for r in records(kind="ws")} == WS_CHANNELS
    assert {r.name for r in records(kind="rest")} == REST_ENDPOINTS


def test_captured_coverage() -> None:
    prov = provenance()
    captured = {r.name for r in records() if prov[rel(r.file)].kind == "captured"}
    assert CAPTURED_WS <= captured
    assert CAPTURED_REST <= captured


def test_order_book_forms_are_both_present() -> None:
    inner = [r.payload["order_book"] for r in records(kind="ws", name="order_book")]
    assert any("nonce" not in ob for ob in inner), "the pre-nonce (+1 offset) form is gone"
    assert any("begin_nonce" in ob for ob in inner), "the nonce/begin_nonce form is gone"


def test_error_frames_in_both_forms() -> None:
    control = [r.payload for r in records(kind="ws", name="control")]
    assert any(set(p) == {"error"} for p in control)
    assert any(p.get("type") == "error" for p in control)
    assert any(p.get("type") == "shutdown" for p in control)
