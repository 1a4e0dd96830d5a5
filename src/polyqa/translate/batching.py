"""How the engine cuts its work: long inputs into parts, sorted inputs into even batches.

Plain functions over token pieces and widths, apart from the engine so they can be
read and tested without a model.
"""

from __future__ import annotations

from collections.abc import Sequence

CLAUSE_END = (",", ";", ":", "،", "、", "，", "；", ")", "-", "–", "—")


def split_pieces(pieces: list[str], limit: int) -> list[list[str]]:
    """Token pieces cut into runs of at most ``limit``, each ending at a clause boundary when there is one.

    A boundary is a piece ending with a clause mark (comma, semicolon, ...); failing that, the
    start of a word (a piece starting with sentencepiece's word marker); failing that, anywhere.
    """
    if len(pieces) <= limit:
        return [pieces]
    parts: list[list[str]] = []
    start = 0
    while len(pieces) - start > limit:
        window = range(start + limit, start + max(limit // 3, 1), -1)  # candidate ends, longest first
        end = next((e for e in window if pieces[e - 1].endswith(CLAUSE_END)), None)
        if end is None:
            end = next((e for e in window if pieces[e].startswith("▁")), start + limit)
        parts.append(pieces[start:end])
        start = end
    parts.append(pieces[start:])
    return parts


def _cut(widths: Sequence[int], cap: int) -> list[tuple[int, int]]:
    """Greedy cut of widths sorted longest first into runs whose padded size (count x first width) stays
    within ``cap`` (a single longer item gets a run of its own): (start, end) of each run."""
    cuts, start = [], 0
    for i in range(1, len(widths) + 1):
        if i == len(widths) or (i + 1 - start) * widths[start] > cap:
            cuts.append((start, i))
            start = i
    return cuts


def plan_batches(widths: Sequence[int], budget: int, workers: int) -> list[tuple[int, int]]:
    """Batches of items sorted longest first: (start, end) runs under a padded-token ``budget``.

    As few batches as the budget allows, raised to a multiple of ``workers`` (never more than
    one per item), and cut so their padded sizes are as even as can be: a greedy cut under the
    budget can leave one worker a lone big batch while the others sit idle at the end.
    """
    if not widths:
        return []
    fewest = len(_cut(widths, budget))
    wanted = min(len(widths), -(-fewest // max(workers, 1)) * max(workers, 1))
    # The least cap whose greedy cut needs no more than ``wanted`` batches: the most even cut.
    low, high = max(widths), max(budget, max(widths))
    while low < high:
        middle = (low + high) // 2
        if len(_cut(widths, middle)) <= wanted:
            high = middle
        else:
            low = middle + 1
    return _cut(widths, low)


def join_parts(parts: list[str], lang: str) -> str:
    """Translations of the parts of one long segment, joined as the language writes them."""
    from polyqa.segment import join_translated

    return join_translated(parts, lang)[0] if len(parts) > 1 else parts[0]
