"""A SQuAD-shaped English source, written on the fly: distinct text at SQuAD train's size.

SQuAD v1.1 train has 87,599 questions over 19,035 paragraphs (about 5 sentences and 120
words each; about 90,000 distinct sentences). :func:`write_squad_json` writes that many
questions and paragraphs as a SQuAD JSON file. The words come from polyqa's shipped sample
text, drawn with a seed, so every sentence and question is distinct (deduplication and the
translation cache see realistic uniqueness) and the tiny model's tokenizer knows the words.
Answers are spans of their paragraph, so projection and alignment run as on real data.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SQUAD_QUESTIONS = 87_599
SQUAD_PASSAGES = 19_035
SENTENCES_PER_PASSAGE = 5
WORDS_PER_SENTENCE = (18, 30)  # about 120 words per passage
WORDS_PER_QUESTION = (7, 14)
PASSAGES_PER_ARTICLE = 43  # SQuAD train: 442 articles


def word_list() -> list[str]:
    from polyqa.translate.sample_text import sample_lines

    words = {w.lower() for line in sample_lines() for w in re.findall(r"[A-Za-z]{2,}", line)}
    return sorted(words)


def _sentence(rng: random.Random, words: list[str], low: int, high: int) -> str:
    picked = rng.choices(words, k=rng.randint(low, high))
    return " ".join(picked).capitalize()


def squad_articles(questions: int = SQUAD_QUESTIONS, passages: int = SQUAD_PASSAGES, seed: int = 0
                   ) -> list[dict]:
    """SQuAD v1.1 ``data`` entries: ``passages`` paragraphs sharing ``questions`` questions."""
    rng = random.Random(seed)
    words = word_list()
    articles: list[dict] = []
    asked = 0
    for p in range(passages):
        if p % PASSAGES_PER_ARTICLE == 0:
            articles.append({"title": f"Article {len(articles):04d}", "paragraphs": []})
        sentences = [_sentence(rng, words, *WORDS_PER_SENTENCE) + "." for _ in range(SENTENCES_PER_PASSAGE)]
        context = " ".join(sentences)
        # Questions spread evenly: passage p gets its share of the total.
        n_questions = (questions * (p + 1)) // passages - asked
        qas = []
        for q in range(n_questions):
            sentence = rng.choice(sentences)
            tokens = sentence.rstrip(".").split()
            length = rng.randint(1, 4)
            first = rng.randint(0, len(tokens) - length)
            answer = " ".join(tokens[first:first + length])
            start = context.index(sentence) + len(" ".join(tokens[:first])) + (1 if first else 0)
            assert context[start:start + len(answer)] == answer
            question = _sentence(rng, words, *WORDS_PER_QUESTION) + "?"
            qas.append({"id": f"q{asked + q:06d}", "question": question,
                        "answers": [{"text": answer, "answer_start": start}]})
        asked += n_questions
        articles[-1]["paragraphs"].append({"context": context, "qas": qas})
    return articles


def write_squad_json(path: Path, questions: int = SQUAD_QUESTIONS, passages: int = SQUAD_PASSAGES,
                     seed: int = 0) -> Path:
    """The source as a SQuAD v1.1 JSON file at ``path`` (written once per size and seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"version": "1.1", "data": squad_articles(questions, passages, seed)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)
    return path


def english_segments(questions: int, passages: int, seed: int = 0) -> list[str]:
    """The distinct segments a build translates: questions, passage sentences, answers."""
    seen: dict[str, None] = {}
    for article in squad_articles(questions, passages, seed):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                seen.setdefault(qa["question"], None)
            for sentence in re.split(r"(?<=\.) ", paragraph["context"]):
                seen.setdefault(sentence, None)
            for qa in paragraph["qas"]:
                seen.setdefault(qa["answers"][0]["text"], None)
    return list(seen)
