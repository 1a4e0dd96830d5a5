"""Which articles a study trains and evaluates on: the held-out split and seeded article samples."""

from __future__ import annotations

import json
import random

from polyqa.errors import ConfigError
from polyqa.splits import heldout_split
from pathlib import Path



def article_split(data_dir: str | Path, heldout_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training titles, held-out titles) of a LAReQA-format set, from its English file."""
    from polyqa.sources.lareqa import article_titles

    try:
        titles = article_titles(data_dir)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read article titles for the split: {exc}") from None
    return heldout_split(titles, heldout_fraction, seed)


def article_groups(data_dir: str | Path) -> list[list[tuple[str, str]]]:
    """The articles of a LAReQA-format set, each as its (file language, title) in every language.

    Articles are linked across languages by the question ids they share: in MLQA-R a German
    article has its own German title and shares ids with one English article. Groups come
    sorted by their titles, so a seeded draw over them does not depend on file order.
    """
    from polyqa.sources.lareqa import language_files, read_json

    owner: dict[str, tuple[str, str]] = {}
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for path in language_files(data_dir).values():
        for article in read_json(path).get("data") or []:
            node = (path.stem, str(article.get("title") or ""))
            root(node)
            for paragraph in article.get("paragraphs") or []:
                for qa in paragraph.get("qas") or []:
                    qid = str(qa.get("id"))
                    if qid in owner:
                        parent[root(node)] = root(owner[qid])
                    else:
                        owner[qid] = node
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for node in list(parent):
        groups.setdefault(root(node), []).append(node)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: json.dumps(g, ensure_ascii=False))


def sample_articles(data_dir: str | Path, n: int, seed: int) -> tuple[list[str], int]:
    """Titles (in every language) of ``n`` articles drawn with ``seed``, and how many there were.

    The evaluation keeps paragraphs by title; a title that also names an article outside the
    draw (in another language) would bring it in, so that is refused rather than evaluated.
    """
    groups = article_groups(data_dir)
    if n > len(groups):
        raise ConfigError(f"{data_dir}: sample_articles {n} > the {len(groups)} articles there")
    picked = random.Random(seed).sample(range(len(groups)), n)
    titles = {title for i in picked for _, title in groups[i]}
    outside = {title for i in set(range(len(groups))) - set(picked) for _, title in groups[i]} & titles
    if outside:
        raise ConfigError(f"{data_dir}: titles {sorted(outside)[:3]} name articles both inside and outside the "
                         "sample; an article-level subset by title is not possible there")
    return sorted(titles), len(groups)
