"""A's copy of the pause in its journal (`pause_mirror`): who wins when, and that it survives a restart."""

from __future__ import annotations

from pathlib import Path

from hedge_strategy.bus import PauseState
from hedge_strategy.execution import Journal
from hedge_strategy.pause_mirror import PAUSE_META, PauseMirror
from tests.fixtures.execution import JOURNAL_ACCOUNT

BY_CTL = PauseState(reason="operator", by="ctl", since_ms=1_000)
BY_A = PauseState(reason="hedge failed", by="A", since_ms=2_000)


async def test_redis_owns_the_truth_while_it_has_its_data(journal: Journal) -> None:
    mirror = PauseMirror(journal)
    mirror.observed(BY_CTL)
    assert mirror.state == BY_CTL
    assert mirror.to_restore(BY_CTL, data_lost=False) is None
    mirror.observed(None)  # an operator's resume: copied, never undone
    assert mirror.state is None
    assert mirror.to_restore(None, data_lost=True) is None


async def test_the_copy_is_set_again_only_when_redis_lost_its_data(journal: Journal) -> None:
    mirror = PauseMirror(journal)
    mirror.observed(BY_CTL)
    assert mirror.to_restore(None, data_lost=False) is None  # a resume not copied yet: Redis wins
    assert mirror.to_restore(None, data_lost=True) == BY_CTL
    assert mirror.to_restore(BY_A, data_lost=True) is None  # Redis holds a pause: it stays


async def test_a_own_pause_reaches_redis_whatever_redis_says_until_taken(journal: Journal) -> None:
    mirror = PauseMirror(journal)
    mirror.set_by_a(BY_A)
    mirror.observed(None)  # Redis has not taken it yet: not overwritten
    assert mirror.to_restore(None, data_lost=False) == BY_A
    assert mirror.to_restore(BY_CTL, data_lost=False) == BY_A
    mirror.asserted(BY_A)
    assert mirror.to_restore(None, data_lost=False) is None
    assert not mirror.unasserted


async def test_the_copy_survives_a_restart_of_a(path: Path) -> None:
    journal = await Journal.open(path, JOURNAL_ACCOUNT)
    PauseMirror(journal).set_by_a(BY_A)
    await journal.close()
    journal = await Journal.open(path, JOURNAL_ACCOUNT)
    try:
        reopened = PauseMirror(journal)
        assert reopened.state == BY_A and reopened.unasserted
    finally:
        await journal.close()


async def test_an_unreadable_copy_is_ignored_and_logged(journal: Journal) -> None:
    journal.set_meta(PAUSE_META, '{"pause": "not a pause", "unasserted": true}')
    mirror = PauseMirror(journal)
    assert mirror.state is None and not mirror.unasserted
