"""The export's card (README.md): Hugging Face front matter and what was exported, from ``export.json``."""

from __future__ import annotations

from typing import Any

import yaml

from polyqa import languages as L
from polyqa.markdown import table

LOADING = {
    "sentence-transformers": """```python
from datasets import load_dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.sentence_transformer import losses

train = load_dataset("{output}", "{pair}", split="train")  # anchor, positive, negative_1 ...
model = SentenceTransformer("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2")
trainer = SentenceTransformerTrainer(model=model, train_dataset=train,
                                     loss=losses.MultipleNegativesRankingLoss(model))
trainer.train()
```""",
    "flagembedding": """```bash
torchrun --nproc_per_node 1 -m FlagEmbedding.finetune.embedder.encoder_only.base \\
    --model_name_or_path BAAI/bge-m3 --train_data {output}/flagembedding \\
    --output_dir bge-polyqa --train_group_size 4
```""",
    "tevatron": """```bash
python -m tevatron.retriever.driver.train --model_name_or_path intfloat/multilingual-e5-base \\
    --dataset_path {output}/tevatron/{pair}/train.jsonl --corpus_path {output}/tevatron/corpus.jsonl \\
    --output_dir tevatron-polyqa
```""",
    "beir": """```python
from beir.datasets.data_loader import GenericDataLoader

corpus, queries, qrels = GenericDataLoader("{output}/beir/{lang}").load(split="test")
```
or `polyqa evaluate --benchmark beir --data-dir {output}/beir/{lang} --model MODEL --output OUT.json`.""",
}


def front_matter(manifest: dict[str, Any]) -> dict[str, Any]:
    langs = manifest["languages"]
    matter: dict[str, Any] = {
        "language": list(dict.fromkeys(L.iso639_1(code) or code for code in langs)),
        "language_details": ", ".join(langs),
        "multilinguality": ["multilingual", "translation"],
        "task_categories": ["sentence-similarity", "text-retrieval"],
        "pretty_name": f"{manifest['corpus_name']} ({manifest['format']} export)",
        "tags": ["polyqa", manifest["format"]] + (["hard-negatives"] if manifest["negatives"] else []),
    }
    if manifest.get("configs"):
        matter["configs"] = manifest["configs"]
    return matter


def render_export_card(manifest: dict[str, Any]) -> str:
    s = manifest["settings"]
    counts = manifest["counts"]
    pair = next(iter(counts), "")
    lines = [
        "---", yaml.safe_dump(front_matter(manifest), sort_keys=False, allow_unicode=True).strip(), "---", "",
        f"# {manifest['corpus_name']}: {manifest['format']} export", "",
        f"Exported by {manifest['written_by']} from the polyqa corpus `{manifest['corpus']}` "
        f"(manifest sha256 `{manifest['corpus_manifest_sha256'][:16]}…`): {sum(counts.values())} "
        f"{'queries' if manifest['format'] == 'beir' else 'examples'} over {len(counts)} language pair(s), "
        f"positive: {s['positive']}; quality filter {'on' if s['quality_filter'] else 'off'}.", "",
    ]
    if manifest["heldout_articles"]:
        lines += [f"{manifest['heldout_articles']} articles are held out (listed in `heldout_articles.txt`): "
                  + ("only they are exported here, for evaluation." if manifest["format"] == "beir"
                     else "none of their rows is in this export."), ""]
    lines += ["## Counts", "", *table(["pair", "count"], [[p, str(n)] for p, n in counts.items()]), ""]
    left = manifest["left_out"]
    if left or manifest["left_out_examples"]:
        lines += ["## Left out", "", "Rows (per language) and examples (per pair) not exported, and why:", "",
                  *table(["language or pair", "reason", "rows"],
                        [[k, reason, str(n)] for part in (left, manifest["left_out_examples"])
                         for k, reasons in part.items() for reason, n in reasons.items()]), ""]
    neg = manifest["negatives"]
    if neg:
        st = neg["settings"]
        lines += ["## Hard negatives", "",
                  f"Mined with `{neg['miner']['model']}` ({neg['miner']['search']}), per language: "
                  f"{st['num_negatives']} per example from ranks {st['range_min']}–{st['range_max']}, "
                  f"relative margin {st['relative_margin']}, max score {st['max_score']}, sampling {st['sampling']}. "
                  "Never the positive or a translation of it, never a passage or sentence containing the answer; "
                  "an X-Y example's negatives are in the positive's language.", ""]
    lines += ["## Loading", "", LOADING[manifest["format"]].format(output=manifest.get("output", "EXPORT"),
                                                                 pair=pair, lang=manifest["languages"][0]), ""]
    return "\n".join(lines)
