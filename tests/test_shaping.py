"""Shaping: ranks, --limit, and lines that are exactly the records serialized, wherever made."""

from __future__ import annotations

import tempfile
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from conftest import models
from hfharvest.shaping import Shaper, WalkShape, output_line, spool_line
from hfharvest.state import Spool, SpooledRecord

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
records = st.dictionaries(st.text(), json_values, max_size=6).filter(
    lambda r: "found_by" not in r and "raw" not in r
)
found_bys = st.dictionaries(st.text(min_size=1), st.integers(1, 10**9), min_size=1, max_size=3)


@given(record=records, found_by=found_bys, raw=json_values, with_raw=st.booleans())
def test_an_output_line_is_the_record_serialized_with_its_keys_added(
    record: dict[str, Any], found_by: dict[str, int], raw: Any, with_raw: bool
) -> None:
    expected = {**record, "found_by": found_by, **({"raw": raw} if with_raw else {})}
    line = output_line(orjson.dumps(record), found_by, orjson.dumps(raw) if with_raw else None)
    assert line == orjson.dumps(expected, option=orjson.OPT_APPEND_NEWLINE)


@given(
    repo_id=st.text(min_size=1),  # tabs, newlines, anything: the id is stored as JSON
    record=records,
    raw=st.none() | json_values.map(orjson.dumps),
    rank=st.integers(1, 10**9),
)
def test_the_spool_gives_back_what_was_spooled(
    repo_id: str, record: dict[str, Any], raw: bytes | None, rank: int
) -> None:
    with tempfile.TemporaryFile() as file:
        spool = Spool(file, durable=False)
        spool.append(spool_line(1, rank, repo_id, orjson.dumps(record), raw))
        spool.append(spool_line(0, 7, "other/one", b"{}", None))
        assert list(spool.records(1)) == [SpooledRecord(rank, repo_id, orjson.dumps(record), raw)]
        assert list(spool.ids()) == [(1, rank, repo_id), (0, 7, "other/one")]


def test_ranks_count_skipped_entries_and_limit_stops_within_a_page() -> None:
    shaper = Shaper(WalkShape("model", "likes", 0, True, False), returned=10, limit=14)
    page: list[Any] = [*models(0, 2), "junk", *models(2, 3)]
    shaped = shaper.take(page)
    assert (shaped.entries, shaped.returned, shaped.skipped) == (6, 4, 1)
    assert shaped.ranks == [11, 12, 14]  # rank 13 was the junk
    assert [orjson.loads(line)["found_by"] for line in shaped.lines.splitlines()] == [
        {"likes": 11}, {"likes": 12}, {"likes": 14}
    ]  # fmt: skip
    assert shaper.take(models(5, 2)).returned == 0  # the limit is reached


def test_kept_drops_the_lines_of_repeats() -> None:
    shaped = Shaper(WalkShape("model", "likes", 0, True, False), returned=0, limit=None).take(
        models(0, 3)
    )
    kept = shaped.kept([True, False, True])
    assert [orjson.loads(line)["id"] for line in kept.splitlines()] == ["org/m0", "org/m2"]
    assert shaped.kept([True] * 3) is shaped.lines
