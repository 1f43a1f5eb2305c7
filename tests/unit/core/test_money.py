from __future__ import annotations

import pytest

from architect.money import usd


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (0.0, "$0.00"),
        (50.0, "$50.00"),
        (1234.5, "$1,234.50"),
        (0.05, "$0.05"),
        (0.123456, "$0.1235"),
        (0.0005, "$0.0005"),
        (0.00001234, "$0.0000123"),
        (-0.0003, "-$0.0003"),
    ],
)
def test_usd_shows_amounts_under_a_cent_by_their_significant_digits(amount: float, shown: str) -> None:
    assert usd(amount) == shown
