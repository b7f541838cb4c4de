"""The restore journal: entries gathered and looked up many to a statement read exactly as one at a time."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sneakernet.restorer.journal import ROWS_PER_STATEMENT, Entry, Journal
from sneakernet.restorer.states import EntryState


def _entry(path: bytes, kind: str = "file", state: str = EntryState.PENDING) -> Entry:
    return Entry(path, kind, 1, state, 10, "ab" * 32, 0o644, 1, 0, 0, None, 1)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.create(str(tmp_path / "dest"), {"shipment": "s"})


def test_added_entries_are_seen_by_every_query_before_any_commit(journal: Journal) -> None:
    paths = [b"d/f%04d" % i for i in range(ROWS_PER_STATEMENT + 37)]  # more than one insert's worth
    for path in paths:
        journal.add_entry(_entry(path))
    assert journal.entry(paths[-1]) == _entry(paths[-1])
    assert journal.count(EntryState.PENDING, "file") == len(paths)
    assert sorted(e.path for e in journal.entries("file")) == paths
    # A statement of restore's own on the connection sees them too.
    assert journal.db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == len(paths)


def test_lookups_ahead_answer_as_the_table_does(journal: Journal) -> None:
    rng = random.Random(5)
    stored = [b"p%05d" % i for i in range(0, 3000, 3)]
    for path in stored:
        journal.add_entry(_entry(path, rng.choice(["file", "dir", "symlink"])))
    journal.commit()
    window = [b"p%05d" % i for i in rng.sample(range(3000), 1200)]  # some stored, some not, over 500 a statement
    expected = {path: journal.entry(path) for path in window}
    journal.prefetch(window)
    assert {path: journal.entry(path) for path in window} == expected
    assert journal.entry(b"not-in-the-window") is None


def test_a_change_after_a_lookup_ahead_is_what_the_next_lookup_sees(journal: Journal) -> None:
    paths = [b"a", b"b", b"c", b"d"]
    journal.add_entry(_entry(b"a"))
    journal.add_entry(_entry(b"b"))
    journal.commit()
    journal.prefetch(paths)
    assert journal.entry(b"c") is None
    journal.add_entry(_entry(b"c"))  # added within the window: seen at once
    assert journal.entry(b"c") == _entry(b"c")
    journal.set_state(b"a", EntryState.DONE)
    journal.set_states([b"b", b"c"], EntryState.FAILED)
    journal.set_final(b"a", 2, 99, "cd" * 32, (0o600, 5, 1, 1))
    assert journal.entry(b"a") == Entry(b"a", "file", 1, EntryState.DONE, 99, "cd" * 32, 0o600, 5, 1, 1, None, 2)
    assert (journal.entry(b"b").state, journal.entry(b"c").state) == (EntryState.FAILED, EntryState.FAILED)  # type: ignore[union-attr]
    assert journal.entry(b"d") is None


def test_many_states_set_at_once(journal: Journal) -> None:
    paths = [b"f%05d" % i for i in range(2 * ROWS_PER_STATEMENT + 1)]
    for path in paths:
        journal.add_entry(_entry(path))
    journal.set_states(paths[1:], EntryState.DONE)
    assert journal.count(EntryState.DONE) == len(paths) - 1 and journal.entry(paths[0]).state == EntryState.PENDING  # type: ignore[union-attr]


def test_entries_not_committed_are_gone_after_close(tmp_path: Path) -> None:
    dest = str(tmp_path / "dest")
    journal = Journal.create(dest, {})
    journal.add_entry(_entry(b"kept"))
    journal.commit()
    journal.add_entry(_entry(b"lost"))  # gathered, never inserted nor committed
    journal.close()
    again = Journal.open(dest)
    assert again.entry(b"kept") == _entry(b"kept") and again.entry(b"lost") is None
    again.close()


def test_a_duplicate_path_is_still_refused(journal: Journal) -> None:
    """Gathering inserts must not hide the primary key: a path added twice fails as it always did."""
    journal.add_entry(_entry(b"twice"))
    journal.add_entry(_entry(b"twice"))
    with pytest.raises(Exception, match="UNIQUE"):
        journal.commit()
