"""Which video gets which category, and which videos go to the test split.

Both are drawn once for the whole dataset from the dataset seed (never per worker), with exact
shares by largest-remainder rounding and the test split stratified by category, so small
datasets still hold every category and test.json is non-empty whenever 0 < test_fraction.
"""

from __future__ import annotations

import numpy as np

from .params import CATEGORIES, CATEGORY_SHARES

# Entropy keys of the two dataset-level random streams; three words, so they never coincide
# with a per-video stream, whose entropy is (seed, video_index).
_CATEGORY_STREAM, _TEST_STREAM = (0, 1), (0, 2)


def _largest_remainder(total: int, shares) -> np.ndarray:
    raw = np.asarray(shares, dtype=np.float64) * total / np.sum(shares)
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _rng(seed: int, stream: tuple[int, int]) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def assign_categories(num_videos: int, seed: int) -> list[str]:
    """The category of each video index: shares CATEGORY_SHARES, shuffled by the seed."""
    counts = _largest_remainder(num_videos, CATEGORY_SHARES)
    categories = np.repeat(np.array(CATEGORIES), counts)
    return [str(c) for c in _rng(seed, _CATEGORY_STREAM).permutation(categories)]


def choose_test_videos(categories: list[str], test_fraction: float, seed: int) -> set[int]:
    """Indices of the test videos: round(test_fraction * n) of them (at least one when
    test_fraction > 0 and at most n - 1 when test_fraction < 1), spread over the categories
    in proportion to their sizes."""
    n = len(categories)
    num_test = int(round(test_fraction * n))
    if test_fraction > 0:
        num_test = max(num_test, 1)
    if test_fraction < 1:
        num_test = min(num_test, n - 1)
    by_category = {c: [i for i, v in enumerate(categories) if v == c] for c in CATEGORIES}
    sizes = [len(by_category[c]) for c in CATEGORIES]
    per_category = _largest_remainder(num_test, sizes) if num_test else np.zeros(len(sizes), int)
    rng = _rng(seed, _TEST_STREAM)
    test: set[int] = set()
    for category, count in zip(CATEGORIES, per_category):
        members = by_category[category]
        test.update(int(i) for i in rng.permutation(members)[: min(count, len(members))])
    return test
