"""Sources, the registry, normalisation, quarantine reasons and the leakage guard."""

from __future__ import annotations

import http.server
import json
import threading
from functools import partial
from pathlib import Path

import pytest

from polyqa.normalize import LeakageGuard, Normalizer, QARecord, locate_answer, text_key
from polyqa.sources.base import (
    Quarantined,
    RawRecord,
    SourceError,
    open_source,
    parse_answers,
    presets,
    register_source,
    resolve_spec,
    source_kinds,
)

SAMPLE = {
    "version": "1.1",
    "data": [
        {
            "title": "Lighthouses",
            "paragraphs": [
                {
                    "context": "A lighthouse carries a bright lamp. Early ones burned wood or coal.",
                    "qas": [
                        {"id": "q1", "question": "What does a lighthouse carry?",
                         "answers": [{"text": "a bright lamp", "answer_start": 21}]},
                        # wrong offset: located at the nearest occurrence instead
                        {"id": "q2", "question": "What did early ones burn?",
                         "answers": [{"text": "wood or coal", "answer_start": 3}]},
                        {"id": "q3", "question": "", "answers": [{"text": "lamp", "answer_start": 29}]},
                        {"id": "q4", "question": "Who?", "answers": [{"text": "a keeper", "answer_start": 0}]},
                        {"id": "q5", "question": "Unanswerable?", "answers": []},
                        {"id": "q1", "question": "What does a lighthouse carry?",
                         "answers": [{"text": "a bright lamp", "answer_start": 21}]},
                    ],
                },
                {"context": "", "qas": [{"id": "q6", "question": "Empty?", "answers": [{"text": "x"}]}]},
            ],
        }
    ],
}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def normalise(spec, **kwargs):
    normalizer = Normalizer(**kwargs)
    out = list(normalizer(open_source(spec)))
    kept = [r for r in out if isinstance(r, QARecord)]
    quarantined = [r for r in out if isinstance(r, Quarantined)]
    return kept, quarantined, normalizer.stats()


def test_squad_json_records_quarantine_and_dedup(tmp_path):
    path = write_json(tmp_path / "sample.json", SAMPLE)
    kept, quarantined, stats = normalise({"kind": "squad_json", "path": str(path), "license": "CC0-1.0"})
    assert [r.english.question for r in kept] == ["What does a lighthouse carry?", "What did early ones burn?"]
    first, second = kept
    assert first.english.passage[first.english.answer_start:].startswith("a bright lamp")
    assert second.english.answer_start == SAMPLE["data"][0]["paragraphs"][0]["context"].index("wood or coal")
    assert first.passage_id == second.passage_id  # same passage text, same passage id
    assert first.qa_id != second.qa_id and first.license == "CC0-1.0" and first.english.title == "Lighthouses"
    reasons = {(q.row, q.field): q.reason for q in quarantined}
    assert reasons[(2, "question")] == "missing or empty question"
    assert "not found in passage" in reasons[(3, "answers")]
    assert reasons[(4, "answers")] == "no answer"
    assert reasons[(5, "id")].startswith("duplicate")
    assert reasons[(6, "passage")] == "missing or empty passage"
    assert all(q.source == str(path) for q in quarantined)
    assert json.loads(quarantined[0].as_row()["record"])["id"] == "q3"
    assert stats == {"read": 7, "kept": 2, "quarantined": 5, "duplicates": 1, "leakage_excluded": 0, "title_excluded": 0,
                     "kept_by_source": {"sample": 2}}


def test_ids_are_stable_and_depend_on_source(tmp_path):
    path = write_json(tmp_path / "sample.json", SAMPLE)
    a, _, _ = normalise({"kind": "squad_json", "path": str(path), "name": "one"})
    b, _, _ = normalise({"kind": "squad_json", "path": str(path), "name": "one"})
    c, _, _ = normalise({"kind": "squad_json", "path": str(path), "name": "two"})
    assert [r.qa_id for r in a] == [r.qa_id for r in b]
    assert {r.qa_id for r in a}.isdisjoint(r.qa_id for r in c)


def test_bad_files_raise_naming_file_row_and_field(tmp_path):
    with pytest.raises(SourceError, match=r"missing\.json: file not found"):
        list(open_source({"kind": "squad_json", "path": str(tmp_path / "missing.json")}))
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(SourceError, match=r"broken\.json: not valid JSON"):
        list(open_source({"kind": "squad_json", "path": str(bad)}))
    with pytest.raises(SourceError, match=r"field 'data'"):
        list(open_source({"kind": "squad_json", "path": str(write_json(tmp_path / "y.json", {"x": 1}))}))
    nested = write_json(tmp_path / "z.json", {"data": [{"title": "t", "paragraphs": "oops"}]})
    with pytest.raises(SourceError, match=r"z\.json, row 0, field 'paragraphs'"):
        list(open_source({"kind": "squad_json", "path": str(nested)}))
    with pytest.raises(SourceError, match="unknown source kind 'nope'"):
        open_source({"kind": "nope"})


def test_squad_json_from_url(tmp_path):
    write_json(tmp_path / "sample.json", SAMPLE)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        kept, _, _ = normalise({"kind": "squad_json", "path": f"{base}/sample.json", "name": "web"})
        (tmp_path / "qa.jsonl").write_text(json.dumps({"question": "Q?", "passage": "A b.", "answers": ["b"]}))
        lines, _, _ = normalise({"kind": "jsonl", "path": f"{base}/qa.jsonl"})
        with pytest.raises(SourceError, match="missing.json: cannot read: HTTP Error 404"):
            list(open_source({"kind": "squad_json", "path": f"{base}/missing.json"}))
    finally:
        server.shutdown()
    assert len(kept) == 2 and kept[0].source == "web"
    assert lines[0].english.answer_start == 2


def test_jsonl_source_with_string_answers_and_bad_lines(tmp_path):
    lines = [
        {"id": "a", "question": "Where is it?", "passage": "It is in Mainz.", "answers": ["Mainz"]},
        {"question": "When?", "passage": "Built in 1450 and again in 1450.",
         "answers": [{"text": "1450", "start": 27}]},
        "not an object",
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n\n", encoding="utf-8")
    kept, quarantined, stats = normalise({"kind": "jsonl", "path": str(path)})
    assert [r.english.answer_start for r in kept] == [9, 27]
    assert [(q.row, q.reason.split(" ")[0]) for q in quarantined] == [(2, "row"), (3, "invalid")]
    assert stats["read"] == 4


def test_hf_dataset_from_local_json_and_saved_dir(tmp_path):
    import datasets

    rows = [{"id": f"r{i}", "title": "T", "question": f"Question {i}?", "context": f"Answer is word{i} here.",
             "answers": {"text": [f"word{i}"], "answer_start": [10]}} for i in range(5)]
    path = tmp_path / "squad_like.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    spec = {"preset": "squad", "dataset": "json", "data_files": str(path), "name": "local-squad"}
    kept, quarantined, _ = normalise(spec)
    assert [r.english.answer_text for r in kept] == [f"word{i}" for i in range(5)] and not quarantined
    assert kept[0].license == "CC-BY-SA-4.0" and kept[0].source == "local-squad"

    saved = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(saved))
    kept2, _, _ = normalise({"preset": "squad", "dataset": None, "load_from_disk": str(saved),
                             "name": "local-squad"})
    assert [r.qa_id for r in kept2] == [r.qa_id for r in kept]

    # nq_open-style: answers are strings, offsets located in the passage
    nq = tmp_path / "nq.jsonl"
    nq.write_text(json.dumps({"question": "who?", "passage": "It was Ada Lovelace.", "answer": ["Ada Lovelace"]}))
    kept3, _, _ = normalise({"preset": "nq_open", "data_files": str(nq)})
    assert kept3[0].english.answer_start == 7

    with pytest.raises(SourceError, match="column 'context' .* not in dataset columns"):
        list(open_source({"preset": "squad", "dataset": "json", "data_files": str(nq)}))


def test_registry_presets_and_new_kind_as_config(tmp_path):
    assert {"squad_json", "jsonl", "hf_dataset", "parallel"} <= set(source_kinds())
    assert {"squad", "nq_open", "jsonl", "polyqa_sample", "xquad_r"} <= set(presets())
    assert resolve_spec({"preset": "squad", "split": "validation"})["split"] == "validation"
    with pytest.raises(SourceError, match="unknown source preset"):
        resolve_spec("nope")

    @register_source("test_inline")
    def inline(spec):
        for i, q in enumerate(spec["questions"]):
            yield RawRecord(spec["name"], i, None, q, spec["passage"], parse_answers(spec["answer"]))

    kept, _, _ = normalise({"kind": "test_inline", "name": "inline", "passage": "Paris is big.",
                            "questions": ["Which city?", "What is big?"], "answer": "Paris"})
    assert [r.english.answer_start for r in kept] == [0, 0]


def test_embedded_sample_is_large_enough_and_exact():
    kept, quarantined, _ = normalise("polyqa_sample")
    assert len(kept) >= 100 and not quarantined
    assert len({r.passage_id for r in kept}) >= 20
    for r in kept:
        e = r.english
        assert e.passage[e.answer_start:e.answer_start + len(e.answer_text)] == e.answer_text


def test_parallel_import_of_xquad_r_uses_given_sentences(xquad_r_dir):
    spec = {"preset": "xquad_r", "path": str(xquad_r_dir), "languages": ["en", "de", "zh"]}
    kept, quarantined, _ = normalise(spec, dedup_questions=False)
    assert len(kept) == 1190 and not quarantined
    # XQuAD repeats 5 questions on the same paragraph under other ids: duplicates by default
    _, duplicates, stats = normalise(spec)
    assert stats["duplicates"] == 5 and all(q.reason.startswith("duplicate") for q in duplicates)
    r = kept[0]
    assert set(r.translations) == {"deu_Latn", "zho_Hans"}
    de = r.translations["deu_Latn"]
    paragraph = json.loads((xquad_r_dir / "de.json").read_text())["data"][0]["paragraphs"][0]
    assert de.sentences == paragraph["sentences"]
    assert de.sentence_starts == [b[0] for b in paragraph["sentence_breaks"]]
    assert de.passage[de.answer_start:].startswith(de.answer_text)
    assert r.source == "xquad-r" and r.license == "CC-BY-SA-4.0"


def test_parallel_import_quarantines_ids_missing_in_a_language(tmp_path):
    en = json.loads(json.dumps(SAMPLE))
    de = json.loads(json.dumps(SAMPLE))
    de["data"][0]["paragraphs"][0]["qas"] = de["data"][0]["paragraphs"][0]["qas"][:1]  # only q1
    write_json(tmp_path / "en.json", en)
    write_json(tmp_path / "de.json", de)
    kept, quarantined, _ = normalise({"kind": "parallel", "path": str(tmp_path)})
    assert [r.english.question for r in kept] == ["What does a lighthouse carry?"]
    assert any("missing in deu_Latn" in q.reason for q in quarantined)


def test_leakage_guard_excludes_evaluation_passages(tmp_path, xquad_r_dir):
    en = json.loads((xquad_r_dir / "en.json").read_text())
    paragraph = en["data"][0]["paragraphs"][0]
    leaked = {"data": [{"title": "x", "paragraphs": [
        {"context": "  " + paragraph["context"].upper() + " ", "qas": paragraph["qas"][:2]}]}] + SAMPLE["data"]}
    path = write_json(tmp_path / "train.json", leaked)
    guard = LeakageGuard([xquad_r_dir / "en.json"])
    assert guard.excludes(paragraph["context"]) and text_key("A  b") == text_key("a b")
    kept, _, stats = normalise({"kind": "squad_json", "path": str(path)}, leakage=guard)
    assert stats["leakage_excluded"] == 2 and len(kept) == 2


def test_answer_parsing_and_location():
    assert [a.text for a in parse_answers({"text": ["x", "y"], "answer_start": [1, 2]})] == ["x", "y"]
    assert parse_answers([{"text": "x", "start": "3"}])[0].start == 3
    with pytest.raises(TypeError):
        parse_answers(42)
    assert locate_answer("ab ab ab", "ab", 4) == 3
    assert locate_answer("ab ab ab", "ab", None) == 0
    assert locate_answer("ab", "zz", 0) is None
