"""The paired measure's statistics in benches/peers.py, against values worked by hand and by
simulation."""

import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402


def test_binomial_cdf_matches_hand_values():
    assert peers.binom_cdf(0, 1) == 0.5
    assert peers.binom_cdf(1, 3) == 0.5
    assert peers.binom_cdf(2, 10) == pytest.approx(56 / 1024)


def test_median_interval_uses_the_textbook_order_statistics():
    # n = 10 at 95 %: x(2) and x(9), coverage 1 − 2·56/1024 = 0.979 (x(3), x(8) would give 0.891).
    assert peers.median_ci(list(range(1, 11))) == (2, 9)
    with pytest.raises(ValueError):
        peers.median_ci([1.0, 2.0, 3.0, 4.0, 5.0])


def test_median_interval_covers_the_median_about_as_often_as_it_claims():
    rng = random.Random(7)
    hits = 0
    trials = 2000
    for _ in range(trials):
        xs = [rng.lognormvariate(0.0, 0.1) for _ in range(40)]  # median exactly 1
        lo, hi = peers.median_ci(xs)
        hits += lo <= 1.0 <= hi
    assert 0.95 <= hits / trials <= 0.995


def test_sign_test_counts_wins_and_gives_the_binomial_tail():
    assert peers.sign_test([1.1, 0.9, 1.2, 1.0]) == (2, pytest.approx(11 / 16))
    wins, p = peers.sign_test([1.01] * 20)
    assert wins == 20 and p == pytest.approx(2**-20)
    assert peers.sign_test([0.9, 0.8]) == (0, 1.0)
    # A far tail stays a positive number (1 − CDF would round to 0).
    wins, p = peers.sign_test([1.1] * 129 + [0.9] * 11)
    assert wins == 129 and 5.3e-27 < p < 5.32e-27
