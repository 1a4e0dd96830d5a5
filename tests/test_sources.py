"""Sources, the registry, normalisation, quarantine reasons and the leakage guard."""

from __future__ import annotations

import http.server
import json
import threading
from functools import partial
from pathlib import Path

import pytest

from polyqa.corpus.normalize import LeakageGuard, Normalizer, QARecord, locate_answer, text_key
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
    assert reasons[(2, "question")] == "question_empty: question is empty"
    assert reasons[(3, "answers")] == "answer_not_found: answer 'a keeper' not found in the passage"
    assert reasons[(4, "answers")] == "answers_empty: no answer given"
    assert reasons[(5, "id")] == "duplicate_id: id 'q1' seen before"
    assert reasons[(6, "passage")] == "passage_empty: passage is empty"
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
    assert [(q.row, q.reason) for q in quarantined] == [
        (2, "row_type: row is str, not an object"), (3, "invalid_json: column 2: Expecting property name enclosed "
                                                      "in double quotes")]
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


def test_parallel_import_of_xquad_r_uses_given_sentences(xquad_r):
    xquad_r_dir = xquad_r.dir
    spec = {"preset": "xquad_r", "path": str(xquad_r_dir), "languages": ["en", "de", "zh"]}
    kept, quarantined, _ = normalise(spec, dedup_questions=False)
    assert len(kept) == xquad_r.questions and not quarantined
    # XQuAD repeats 5 questions on the same paragraph under other ids: duplicates by default
    _, duplicates, stats = normalise(spec)
    assert stats["duplicates"] == xquad_r.duplicates and all(q.reason.startswith("duplicate") for q in duplicates)
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


GOOD_ROW = {"id": "good", "title": "Lighthouses", "question": "What does a lighthouse carry?",
            "passage": "A lighthouse carries a bright lamp.",
            "answers": [{"text": "a bright lamp", "answer_start": 21}]}
# (field, bad value, the quarantine reason): a value of the wrong type is a type error, never "missing"
BAD_FIELDS = [
    ("question", 7, "question_type: question is int, not a string"),
    ("question", None, "question_missing: question is missing"),
    ("question", "  ", "question_empty: question is empty"),
    ("passage", ["A", "b"], "passage_type: passage is list, not a string"),
    ("passage", None, "passage_missing: passage is missing"),
    ("answers", 3, "answers_type: answers is int, not a list, an object or a string"),
    ("answers", None, "answers_missing: answers is missing"),
    ("answers", [{"text": 5, "answer_start": 0}], "answers_type: answer 0 text is int, not a string"),
    ("answers", [{"text": "lamp", "answer_start": "x"}], "answer_start_type: answer start 'x' is str, not an integer"),
    ("id", {"a": 1}, "id_type: id is object, not a string or integer"),
    ("id", True, "id_type: id is bool, not a string or integer"),
    ("title", 1984, "title_type: title is int, not a string"),
]


def _bad_rows() -> list[dict]:
    return [dict(GOOD_ROW, id=f"bad-{i}", **{name: value}) if name != "id" else dict(GOOD_ROW, id=value)
            for i, (name, value, _) in enumerate(BAD_FIELDS)]


def _as_squad(rows: list[dict]) -> dict:
    return {"data": [{"title": r["title"], "paragraphs": [{"context": r["passage"], "qas": [
        {"id": r["id"], "question": r["question"], "answers": r["answers"]}]}]} for r in rows]}


def _reasons(quarantined: list) -> list[str]:
    return [q.reason for q in sorted(quarantined, key=lambda q: q.row)]


@pytest.mark.parametrize("kind", ["squad_json", "jsonl", "hf_dataset"])
def test_every_source_kind_reports_type_errors_as_type_errors(tmp_path, kind):
    rows = _bad_rows()
    if kind == "squad_json":
        spec = {"kind": "squad_json", "path": str(write_json(tmp_path / "s.json", _as_squad([GOOD_ROW, *rows])))}
        kept, quarantined, _ = normalise(spec)
        assert len(kept) == 1 and _reasons(quarantined) == [reason for _, _, reason in BAD_FIELDS]
        return
    if kind == "jsonl":
        path = tmp_path / "s.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in [GOOD_ROW, *rows]), encoding="utf-8")
        kept, quarantined, _ = normalise({"kind": "jsonl", "path": str(path)})
        assert len(kept) == 1 and _reasons(quarantined) == [reason for _, _, reason in BAD_FIELDS]
        return
    import datasets  # one saved dataset per case: a column holds one type

    columns = {"id": "id", "title": "title", "question": "question", "passage": "passage", "answers": "answers"}
    for i, ((_, _, reason), row) in enumerate(zip(BAD_FIELDS, rows)):
        saved = tmp_path / f"case{i}"
        datasets.Dataset.from_list([row]).save_to_disk(str(saved))
        kept, quarantined, _ = normalise({"kind": "hf_dataset", "load_from_disk": str(saved), "columns": columns})
        assert not kept and _reasons(quarantined) == [reason], row


def test_parallel_import_reports_type_errors_in_other_languages(tmp_path):
    text_fields = [case for case in BAD_FIELDS if case[0] != "id"]
    rows = [r for r, case in zip(_bad_rows(), BAD_FIELDS) if case[0] != "id"]
    clean = [dict(r, **{name: GOOD_ROW[name]}) for r, (name, _, _) in zip(rows, text_fields)]
    write_json(tmp_path / "en.json", _as_squad([GOOD_ROW, *clean]))
    write_json(tmp_path / "de.json", _as_squad([GOOD_ROW, *rows]))
    kept, quarantined, _ = normalise({"kind": "parallel", "path": str(tmp_path)})
    assert len(kept) == 1
    reasons = [q.reason for q in quarantined]
    for name, value, reason in text_fields:
        if name == "answers" and value is not None:  # unreadable in the German file: quarantined there,
            assert reasons.count(reason) == 1          # and its English row with it
        else:  # checked with the English row, named with its language
            assert reasons.count(f"{reason} (in deu_Latn)") == 1
    unreadable = sum(1 for name, value, _ in text_fields if name == "answers" and value is not None)
    assert sum(r.startswith("id_not_in_language: ") and "missing in deu_Latn" in r for r in reasons) == unreadable
    assert len(reasons) == len(text_fields) + unreadable


def test_quarantine_reasons_are_counted_by_code(tmp_path):
    """The manifest counts rows per reason code; the detail stays in the quarantine row."""
    from polyqa.corpus.writer import QuarantineWriter, read_quarantine
    from polyqa.sources.base import REASONS, reason_code

    path = write_json(tmp_path / "s.json", _as_squad([GOOD_ROW, *_bad_rows(), dict(GOOD_ROW, id="other", answers=[
        {"text": "a red flag", "answer_start": 0}])]))
    _, quarantined, _ = normalise({"kind": "squad_json", "path": str(path)})
    with QuarantineWriter(tmp_path / "corpus") as writer:
        for q in quarantined:
            writer.add(q.as_row())
    assert writer.reasons == {"question_type": 1, "question_missing": 1, "question_empty": 1, "passage_type": 1,
                              "passage_missing": 1, "answers_type": 2, "answers_missing": 1, "answer_start_type": 1,
                              "id_type": 2, "title_type": 1, "answer_not_found": 1}
    assert set(writer.reasons) <= set(REASONS)
    table = read_quarantine(tmp_path / "corpus")
    assert [reason_code(r) for r in table.column("reason").to_pylist()] == [reason_code(q.reason) for q in quarantined]
    assert "'a red flag' not found in the passage" in table.column("reason").to_pylist()[-1]
