"""Data cards tell the truth and go where the corpus goes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from polyqa.corpus.job import build_corpus

REPO = Path(__file__).resolve().parents[1]


def squad_file(path: Path, passages: int = 2) -> Path:
    data = json.loads(resources.files("polyqa.data").joinpath("default_sample.json").read_text("utf-8"))
    data["data"] = data["data"][:passages]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


def config(tmp_path: Path, tiny_model, **overrides) -> dict:
    values = {
        "name": "cards", "languages": ["de"], "shard_rows": 50, "model": "tiny",
        "tiny_model_dir": str(tiny_model.hf_dir.parent), "cache": str(tmp_path / "c.sqlite"),
        "decoding": {"beam_size": 1, "max_length_extra": 4},
        "sources": [{"kind": "squad_json", "path": str(squad_file(tmp_path / "mine.json")), "name": "mine"}],
    }
    values.update(overrides)
    return values


def test_a_source_of_unknown_license_makes_the_card_say_unknown_not_the_models_license(tmp_path, tiny_model):
    manifest = build_corpus(config(tmp_path, tiny_model), tmp_path / "corpus")
    card = (tmp_path / "corpus" / "README.md").read_text("utf-8")
    assert front_matter(card)["license"] == ["unknown"]
    assert "apache-2.0" not in card.split("---\n")[1]
    assert "license of source mine is not known" in card
    # the manifest's quantization is the one that ran, the request kept beside it
    model = manifest.model()
    assert model["quantization"] == model["model_info"]["quantization"] == "float32"
    assert model["requested_quantization"] == "int8"
    assert "float32 on cpu" in card


def test_known_licenses_are_listed_with_the_models(tmp_path, tiny_model):
    cfg = config(tmp_path, tiny_model)
    cfg["sources"][0]["license"] = "CC-BY-SA-4.0"
    build_corpus(cfg, tmp_path / "corpus")
    card = (tmp_path / "corpus" / "README.md").read_text("utf-8")
    assert front_matter(card)["license"] == ["cc-by-sa-4.0", "apache-2.0"]  # the tiny model's own license
    cfg["sources"][0]["license"] = "Custom research terms"
    build_corpus(cfg, tmp_path / "corpus2")
    card = (tmp_path / "corpus2" / "README.md").read_text("utf-8")
    assert front_matter(card)["license"] == ["other", "apache-2.0"]
    assert "listed as `other`: Custom research terms." in card


def test_an_imported_corpus_reads_no_machine_translation(tmp_path, xquad_r_dir):
    build_corpus({"name": "imported", "model": None, "languages": ["de"], "dedup_questions": False,
                  "sources": [{"kind": "parallel", "path": str(xquad_r_dir), "name": "xquad-r",
                               "license": "CC-BY-SA-4.0", "languages": ["en", "de"],
                               "titles": ["Normans"]}]},
                 tmp_path / "corpus")
    card = (tmp_path / "corpus" / "README.md").read_text("utf-8")
    assert "Machine translation: no machine translation" in card
    assert "revision -" not in card and "int8" not in card
    assert front_matter(card)["license"] == ["cc-by-sa-4.0"]


def test_a_build_from_any_folder_writes_no_card_folder_there_and_no_repository_file(tmp_path, tiny_model):
    tracked_card = REPO / "data_cards" / "polyqa-default.md"
    before = tracked_card.stat().st_mtime_ns
    work = tmp_path / "elsewhere"
    work.mkdir()
    cfg = tmp_path / "build.yaml"
    cfg.write_text(yaml.safe_dump(config(tmp_path, tiny_model)), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "polyqa.cli", "build-corpus", "--config", str(cfg),
                           "--output", "out", "--no-progress"], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    assert (work / "out" / "README.md").is_file()
    assert tracked_card.stat().st_mtime_ns == before
    # asked explicitly: a copy goes to the given folder
    done = subprocess.run([sys.executable, "-m", "polyqa.cli", "build-corpus", "--config", str(cfg),
                           "--output", "out2", "--no-progress", "--cards-dir", "cards"], cwd=work, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (work / "cards" / "cards.md").read_text("utf-8") == (work / "out2" / "README.md").read_text("utf-8")


def test_a_paragraph_with_a_sentence_longer_than_the_model_builds(tmp_path, tiny_model):
    """A 300-token sentence in a long paragraph used to end the build in a position-encoding error."""
    from polyqa.corpus.reader import read_language
    from polyqa.corpus.validate import validate_corpus

    one_sentence = ("The keeper, who had lived there for forty years, listed " +
                    ", ".join(f"the {n}th boat of the harbour" for n in range(1, 90)) + " in his journal.")
    context = "The island has a lighthouse. " + one_sentence + " It still stands today."
    answer = "forty years"
    squad = {"data": [{"title": "Island", "paragraphs": [{"context": context, "qas": [
        {"id": "q1", "question": "How long had the keeper lived there?",
         "answers": [{"text": answer, "answer_start": context.index(answer)}]}]}]}]}
    path = tmp_path / "long.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    cfg = config(tmp_path, tiny_model, languages=["de"])
    cfg["sources"] = [{"kind": "squad_json", "path": str(path), "name": "long", "license": "CC0-1.0"}]
    manifest = build_corpus(cfg, tmp_path / "corpus")
    assert validate_corpus(tmp_path / "corpus").ok
    german = read_language(tmp_path / "corpus", "deu_Latn").to_pylist()[0]
    assert len(german["sentences"]) == 3 and all(german["sentences"])  # the long one is still one sentence
    assert german["answer_sentence"] == 1
    assert manifest.translation_per_language()["deu_Latn"]["split_inputs"] >= 1
