"""A corpus folder follows Hugging Face `datasets` conventions: one config per language plus `default`,
and a card whose metadata the Hub's own parser accepts offline."""

from __future__ import annotations

import pytest

from polyqa.corpus.job import build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, xquad_r_dir):
    folder = tmp_path_factory.mktemp("hub") / "corpus"
    build_corpus({"name": "xquad-r-normans", "model": None, "languages": ["de", "zh"], "dedup_questions": False,
                  "shard_rows": 20,
                  "sources": [{"kind": "parallel", "path": str(xquad_r_dir), "name": "xquad-r",
                               "license": "CC-BY-SA-4.0", "languages": ["en", "de", "zh"],
                               "titles": ["Normans"]}]},
                 folder)
    return folder


@pytest.mark.parametrize("streaming", [False, True])
def test_load_dataset_reads_one_language_or_all(corpus, streaming):
    from datasets import load_dataset

    german = load_dataset(str(corpus), "deu_Latn", split="train", streaming=streaming)
    rows = list(german)
    assert rows and {row["lang"] for row in rows} == {"deu_Latn"}
    everything = list(load_dataset(str(corpus), split="train", streaming=streaming))
    assert {row["lang"] for row in everything} == {"eng_Latn", "deu_Latn", "zho_Hans"}
    assert len(everything) == 3 * len(rows)
    assert list(load_dataset(str(corpus), "default", split="train", streaming=streaming)) == everything


def test_the_card_metadata_parses_with_huggingface_hub(corpus):
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCard.load(corpus / "README.md")
    data = card.data
    assert isinstance(data, DatasetCardData)
    assert data.license == ["cc-by-sa-4.0"]
    assert data.language == ["en", "de", "zh"]
    assert [c["config_name"] for c in data.configs] == ["default", "eng_Latn", "deu_Latn", "zho_Hans"]
    assert data.task_categories == ["question-answering", "text-retrieval"]
    assert data.size_categories == ["n<1K"]
