"""The one grammar for durations (`--since` of `redeliver` and `audit export`) and times
(`since`/`until` of the feedback API)."""

from __future__ import annotations

import pytest

from app.times import parse_duration, parse_time

DURATIONS = [("90s", 90), (" 90S ", 90), ("30m", 1800), ("6h", 21600), ("24h", 86400)]
DURATIONS += [("2d", 172800), ("7d", 604800), ("2w", 1209600), ("1h30m", 5400), ("1.5h", 5400)]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "24", "6", "h", "1y", "1h 30x", "-1h", "0h", "yesterday", "1h" * 100]
)
def test_bad_durations_show_the_accepted_forms(text):
    with pytest.raises(ValueError, match="e.g. 30m, 24h, 7d or 1h30m"):
        parse_duration(text)


EPOCH = 1764547200  # 2025-12-01T00:00:00Z
TIMES = ["1764547200", "2025-12-01", "2025-12-01T00:00:00Z", "2025-12-01T02:00:00+02:00"]


@pytest.mark.parametrize("text", [*TIMES, "2025-12-01T00:00:00"])
def test_times_are_iso_8601_or_epoch_seconds(text):
    assert parse_time(text) == EPOCH


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "", "9" * 100 + "x"])
def test_a_bad_time_shows_an_example(text):
    with pytest.raises(ValueError, match="2026-12-01T09:00:00Z"):
        parse_time(text)
