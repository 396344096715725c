"""How pairs are divided into training, validation and test.

Both rules depend only on file names (never on directory listing order, paths
or library versions), so every user of the same archive gets the same split.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from fractions import Fraction

from prepare.layouts import Pair

SPLIT_KEYS = ("training", "validation", "test")

#: The paper's fixed (training, validation, test) counts, taken in sorted name order.
PAPER_SPLIT_SIZES = {
    "isic2017": (1250, 150, 600),
    "isic2018": (1815, 259, 520),
    "ph2": (0, 0, 200),
}
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)

Split = dict[str, list[Pair]]


def by_name(pairs: Sequence[Pair]) -> list[Pair]:
    """``pairs`` sorted by image file name."""
    return sorted(pairs, key=lambda pair: pair.image.name)


def consecutive_split(ordered: Sequence[Pair], sizes: Sequence[int]) -> Split:
    """The first ``sizes[0]`` pairs for training, the next ``sizes[1]`` for validation, the rest for test."""
    if sum(sizes) != len(ordered):
        raise ValueError(f"split sizes {tuple(sizes)} do not add up to {len(ordered)} pairs")
    ends = [sum(sizes[: i + 1]) for i in range(len(SPLIT_KEYS))]
    starts = [0, *ends[:-1]]
    return {key: list(ordered[a:b]) for key, a, b in zip(SPLIT_KEYS, starts, ends)}


def paper_split(pairs: Sequence[Pair], sizes: Sequence[int]) -> Split:
    """Consecutive runs of ``sizes`` pairs in sorted file-name order, as in the paper.

    The reference release listed the folder unsorted, whose order depends on the
    file system; sorting makes the split the same for everyone.
    """
    return consecutive_split(by_name(pairs), sizes)


def seeded_order(pairs: Sequence[Pair], seed: int) -> list[Pair]:
    """``pairs`` shuffled by the SHA-256 of seed and file name.

    Unlike ``random.shuffle`` or NumPy, whose streams may change between
    versions, a hash gives the same order forever, and a pair's place does not
    depend on which other files are present.
    """
    return sorted(pairs, key=lambda pair: hashlib.sha256(f"{seed}:{pair.image.name}".encode()).hexdigest())


def fraction_sizes(count: int, fractions: Sequence[float]) -> tuple[int, ...]:
    """Whole split sizes adding up to ``count``, as close to ``fractions`` as possible.

    Largest-remainder rounding: each split gets the floor of its share, and the
    pairs left over go to the splits with the largest remainders, ties to the
    earlier split. Shares are exact fractions of the decimals as written
    (0.7 + 0.1 + 0.2 is not 1 in binary floating point), so ties are real ties.
    """
    shares = [Fraction(str(f)) for f in fractions]
    exact = [count * share / sum(shares) for share in shares]
    sizes = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: sizes[i] - exact[i])
    for i in by_remainder[: count - sum(sizes)]:
        sizes[i] += 1
    return tuple(sizes)


def random_split(pairs: Sequence[Pair], fractions: Sequence[float], seed: int) -> Split:
    """A seeded random split with the given fractions; each split's list is in name order."""
    split = consecutive_split(seeded_order(pairs, seed), fraction_sizes(len(pairs), fractions))
    return {key: by_name(members) for key, members in split.items()}
