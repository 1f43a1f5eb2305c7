"""The stored Responses API answers (`store.responses`) behave the same on the memory store's double,
SQLite and PostgreSQL: a row is read and deleted only by its key, expires, and a key's rows are kept
under its byte cap by evicting the oldest."""

from __future__ import annotations

from typing import Any

from architect.store import Store


def _row(rid: str, key: str, t: float, size: int = 10, ttl: float = 100.0) -> dict[str, Any]:
    return {
        "id": rid,
        "key_id": key,
        "created_at": t,
        "expires_at": t + ttl,
        "size": size,
        "body": f'{{"r":"{rid}"}}',
    }


def test_key_scoped_reads_and_deletes(store: Store) -> None:
    repo = store.responses
    repo.put([_row("r1", "k1", 1.0), _row("r2", "k2", 1.0)])
    assert repo.get("r1", "k1", 2.0) == '{"r":"r1"}'
    assert repo.get("r1", "k2", 2.0) is None
    assert repo.delete("r1", "k2") is False
    assert repo.get("r1", "k1", 2.0) is not None
    assert repo.delete("r1", "k1") is True
    assert repo.get("r1", "k1", 2.0) is None
    assert repo.delete("r1", "k1") is False


def test_expiry_and_purge(store: Store) -> None:
    repo = store.responses
    repo.put([_row("old", "k", 1.0, ttl=5.0), _row("new", "k", 1.0, ttl=50.0)])
    assert repo.usage("k", 7.0) == 10
    assert repo.get("old", "k", 7.0) is None and repo.get("new", "k", 7.0) is not None
    assert repo.purge_expired(7.0) == 1
    assert repo.get("new", "k", 7.0) is not None


def test_oldest_evicted_over_the_cap(store: Store) -> None:
    repo = store.responses
    repo.put([_row(f"a{i}", "k", float(i), size=40) for i in range(3)])
    repo.put([_row("b0", "other", 1.0, size=90)])
    assert repo.usage("k", 3.0) == 120
    assert repo.evict("k", 100, 3.0) == 80  # 3 x 40 > 100: the oldest went
    assert repo.get("a0", "k", 3.0) is None
    assert repo.get("a1", "k", 3.0) is not None and repo.get("a2", "k", 3.0) is not None
    assert repo.get("b0", "other", 3.0) is not None  # another key's rows are its own
    assert repo.evict("k", 100, 500.0) == 0  # all expired


def test_eviction_frees_the_oldest_whatever_their_sizes(store: Store) -> None:
    repo = store.responses
    # 200 small old rows, then 10 large new ones: the oldest must all go, more than a guess from the
    # average size reads first
    repo.put([_row(f"s{i}", "k", float(i), size=1) for i in range(200)])
    repo.put([_row(f"l{i}", "k", 300.0 + i, size=100) for i in range(10)])
    repo.put([_row("gone", "k", 0.5, size=1, ttl=1.0)])  # expired at 2.0, whatever its place
    assert repo.evict("k", 1000, 2.0) == 1000
    assert repo.get("s199", "k", 2.0) is None and repo.get("l0", "k", 2.0) is not None
    assert repo.usage("k", 2.0) == 1000 and repo.get("gone", "k", 0.9) is None
    assert repo.evict("k", 5000, 2.0) == 1000  # under the cap: nothing more goes
    assert repo.evict("k", 950, 2.0) == 900  # one more large row
    assert repo.get("l0", "k", 2.0) is None and repo.get("l1", "k", 2.0) is not None


def test_text_a_database_cannot_hold_is_stored_escaped(store: Store) -> None:
    repo = store.responses
    row = _row("r-nul", "k1", 1.0)
    row["body"] = '{"text":"a\x00b \ud800"}'  # NUL and a lone surrogate, as a client may send them
    assert repo.put([row]) == []
    assert repo.get("r-nul", "k1", 2.0) == '{"text":"a\ufffdb \ufffd"}'


def test_a_row_whose_id_is_taken_never_drops_the_rest_of_its_batch(store: Store) -> None:
    repo = store.responses
    assert repo.put([_row("r-old", "k1", 1.0, size=7)]) == []
    batch = [_row(f"r{i}", "k1" if i % 2 else "k2", 2.0 + i) for i in range(400)]  # several INSERTs on SQLite
    batch[5] = _row("r-old", "k2", 2.0, size=9)  # the same id again, another key's: left out, named
    batch[250] = _row("r-old", "k1", 2.0, size=11)
    assert repo.put(batch) == ["r-old", "r-old"]
    for i in range(400):
        if i not in (5, 250):
            assert repo.get(f"r{i}", "k1" if i % 2 else "k2", 2.0) == f'{{"r":"r{i}"}}'
    assert repo.get("r-old", "k1", 2.0) == '{"r":"r-old"}' and repo.get("r-old", "k2", 2.0) is None
    assert repo.usage("k1", 2.0) == 7 + 10 * 199  # the first row of that id, as it was
    assert repo.put([_row("r-after", "k1", 1.0)]) == []  # and the store takes the next batch
    assert repo.get("r-after", "k1", 2.0) is not None
