"""The Pareto/NBD likelihood is computed in blocks of rows, several at a time (threads): the result must be the
blocks' results in row order, each exactly as computed alone, whatever the number of blocks."""

from __future__ import annotations

import numpy as np
import pytest

from rapport.predictions import pareto_nbd

PARAMS = np.array([0.55, 10.6, 0.61, 11.7])  # r, alpha, s, beta: near the CDNOW fit (Fader & Hardie 2005)
# 23 customers: one-time buyers (x 0), regulars, a purchase on the last day (t_x == T), a first-day customer (T 0)
X = np.array([0, 0, 1, 2, 3, 5, 8, 13, 0, 1, 4, 7, 2, 0, 6, 9, 1, 3, 0, 2, 11, 0, 4], dtype="float64")
T_X = np.array([0, 0, 3.5, 10, 20, 30.5, 36, 38, 0, 1, 25, 39, 12, 0, 33, 37, 2, 15, 0, 5, 38.5, 0, 38.9])
T = np.array(
    [38.9, 10, 38, 38.9, 38.9, 38.9, 38.9, 38.9, 2, 20, 30, 39, 38, 0, 38.9, 38.9, 38.9, 38.9, 25, 7, 38.9, 38.9, 38.9]
)


@pytest.mark.parametrize("gradient", [False, True])
@pytest.mark.parametrize(("chunk", "min_block"), [(1, 1), (4, 1), (5, 3), (23, 2), (1000, 1), (1000, 2000)])
def test_blocks_join_in_row_order_as_computed_alone(monkeypatch, chunk: int, min_block: int, gradient: bool) -> None:
    monkeypatch.setattr(pareto_nbd, "_CHUNK", chunk)
    monkeypatch.setattr(pareto_nbd, "_MIN_BLOCK", min_block)
    monkeypatch.setattr(pareto_nbd, "_WORKERS", 3)
    starts = pareto_nbd._block_starts(len(X))
    assert starts.step <= chunk and starts[0] == 0 and starts[-1] < len(X) <= starts[-1] + starts.step
    got = pareto_nbd._parts(PARAMS, X, T_X, T, gradient=gradient)
    # the same blocks one after the other, in this thread
    alone = [
        pareto_nbd._block_parts(
            *PARAMS, X[lo : lo + starts.step], T_X[lo : lo + starts.step], T[lo : lo + starts.step], gradient
        )
        for lo in starts
    ]
    assert len(got) == (3 if gradient else 2)
    for i, column in enumerate(got):
        np.testing.assert_array_equal(column, np.concatenate([block[i] for block in alone]))
    # and each customer alone, to the last digit: a row's values depend on that row only, whatever the blocks
    for row in range(len(X)):
        one = pareto_nbd._block_parts(*PARAMS, X[row : row + 1], T_X[row : row + 1], T[row : row + 1], gradient)
        for i, column in enumerate(got):
            np.testing.assert_array_equal(column[row], one[i][0])


@pytest.mark.parametrize(
    ("n", "blocks", "rows"),
    [
        (0, 1, 1),
        (1, 1, 1),
        (3_999, 1, 3_999),  # under two workers' minimum: one block
        (4_000, 2, 2_000),
        (22_000, 2, 11_000),  # a 100k-people day's fit and scoring: one block per worker
        (50_000, 4, 12_500),  # the 1M fit's sample: 3 blocks of at most 20,000, made 4 for 2 workers
        (305_322, 16, 19_083),  # the 1M day's scoring
    ],
)
def test_block_layout_for_two_workers(monkeypatch, n: int, blocks: int, rows: int) -> None:
    monkeypatch.setattr(pareto_nbd, "_WORKERS", 2)
    starts = pareto_nbd._block_starts(n)
    assert (len(starts), starts.step) == (blocks, rows)


def test_no_customers_gives_empty_columns() -> None:
    alive, ll = pareto_nbd._parts(PARAMS, np.array([]), np.array([]), np.array([]))
    assert alive.shape == ll.shape == (0,)
