"""One export of a corpus (``polyqa export`` and the ``export-corpus`` flow both run an :class:`ExportJob`).

The corpus must pass ``polyqa validate``. The export folder is new, empty, or an earlier export of
polyqa's (it has ``.polyqa-export.json``): polyqa never writes over files it did not write, and one
writer holds the folder at a time. ``export.json`` is written last; an export whose ``export.json``
says the same corpus (manifest sha256) and settings, with every file present at its sha256, is
up to date and not written again.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyqa import __version__, locking, storage
from polyqa import languages as L
from polyqa.corpus import reader
from polyqa.corpus.writer import sha256_file
from polyqa.errors import ConfigError, PolyqaError
from polyqa.export import formats
from polyqa.export.config import ExportConfig
from polyqa.export.examples import Selection, documents, iter_examples, language_pairs, positive_document
from polyqa.export.mining import MinedNegatives, MinerSettings, manifest_sha256, mine_negatives

log = logging.getLogger(__name__)

EXPORT_FILE = "export.json"
OWNER_FILE = ".polyqa-export.json"  # written first: the folder is polyqa's from then on
CARD_FILE = "README.md"
HELDOUT_FILE = "heldout_articles.txt"
NEGATIVES_DIR = "negatives"
SKIP_TRAINING_ARTICLE = "training_article"  # beir with a split: only held-out articles are evaluated on


@dataclass
class ExportResult:
    output: Path
    manifest: dict[str, Any]
    up_to_date: bool = False


def corpus_titles(corpus: Path, lang: str) -> set[str]:
    return {t for t in reader.read_language(corpus, lang, columns=["title"]).column("title").to_pylist() if t}


class ExportJob:
    """Opened once (config and corpus checked, split and languages resolved), then :meth:`run`."""

    def __init__(self, config: ExportConfig, progress: Callable[[str], None] = log.info) -> None:
        from polyqa.corpus.validate import validate_corpus
        from polyqa.splits import heldout_split, read_titles

        self.config, self.progress = config, progress
        self.corpus = Path(reader.require_corpus(config.corpus, manifest=True))
        report = validate_corpus(self.corpus)
        if not report.ok:
            raise PolyqaError("the corpus does not pass polyqa validate, so it is not exported: "
                              + "; ".join(report.errors[:3]), where=str(self.corpus),
                              todo="run polyqa validate on it, and rebuild what it names")
        self.corpus_sha256 = manifest_sha256(self.corpus)
        available = reader.corpus_languages(self.corpus)
        self.languages = L.normalize_many(config.languages) if config.languages else available
        missing = [lang for lang in self.languages if lang not in available]
        if missing:
            raise ConfigError(f"language(s) {', '.join(missing)} not in the corpus", where=str(self.corpus),
                              todo=f"choose among {', '.join(available)}")
        self.pairs = language_pairs(self.languages, config.pairs)
        if not self.pairs:
            raise ConfigError(f"pairs {config.pairs} of one language give no examples",
                              todo="export x-x or all, or give more languages")
        titles = corpus_titles(self.corpus, self.languages[0])
        self.heldout: list[str] = []
        if config.heldout_titles_file:
            given = read_titles(config.heldout_titles_file)
            unknown = sorted(given - titles)
            if unknown:
                raise ConfigError(f"{len(unknown)} held-out title(s) are not articles of the corpus: "
                                  + ", ".join(repr(t) for t in unknown[:5]), where=config.heldout_titles_file,
                                  todo="use the titles file written for this corpus (titles match its title column)")
            self.heldout = sorted(given)
        elif config.heldout_fraction is not None:
            self.heldout = heldout_split(titles, config.heldout_fraction, config.seed)[1]
        self.output = Path(config.output)

    # --------------------------------------------------------------------------- the folder

    def _check_output(self) -> None:
        out = self.output
        if not out.exists():
            return
        if not out.is_dir():
            raise PolyqaError("a file where the export folder is expected", where=str(out),
                              todo="pass a new folder as --output")
        if (out / OWNER_FILE).is_file():
            return
        theirs = [p.name for p in out.iterdir() if not locking.is_lock_name(p.name)]
        if theirs:
            raise PolyqaError(f"the folder holds files polyqa did not write ({', '.join(sorted(theirs)[:3])})",
                              where=str(out), todo="pass a new or empty folder as --output; nothing was changed")

    def settings(self) -> dict[str, Any]:
        return self.config.model_dump(exclude={"output", "corpus", "device", "batch_size"})

    def _up_to_date(self) -> dict[str, Any] | None:
        try:
            manifest = json.loads((self.output / EXPORT_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if manifest.get("corpus_manifest_sha256") != self.corpus_sha256 or manifest.get("settings") != self.settings():
            return None
        for relative, digest in manifest.get("files", {}).items():
            path = self.output / relative
            if not path.is_file() or sha256_file(path) != digest:
                return None
        return manifest

    def _clear_earlier(self) -> None:
        """Remove what an earlier export of polyqa's wrote here (listed in its owner file), nothing else."""
        owner = json.loads((self.output / OWNER_FILE).read_text("utf-8"))
        for name in owner.get("folders", []):
            if (self.output / name).is_dir():
                shutil.rmtree(self.output / name)
        for name in owner.get("files", []):
            (self.output / name).unlink(missing_ok=True)

    # --------------------------------------------------------------------------- negatives

    def negatives(self) -> MinedNegatives | None:
        c = self.config
        if not c.mines:
            return None
        if c.mine_model:
            settings = MinerSettings(model=c.mine_model, positive=c.positive, num_negatives=c.num_negatives,
                                     range_min=c.range_min, range_max=c.range_max,
                                     relative_margin=c.relative_margin, max_score=c.max_score,
                                     sampling=c.sampling, seed=c.seed)
            return mine_negatives(self.corpus, self.output / NEGATIVES_DIR, settings, languages=self.languages,
                                  batch_size=c.batch_size, device=c.device, progress=self.progress)
        mined = MinedNegatives.load(Path(c.negatives))
        problem = mined.verify(self.corpus_sha256, sorted({y for _, y in self.pairs}))
        if problem:
            raise PolyqaError(f"the mined negatives cannot be used: {problem}", where=c.negatives,
                              todo="mine them again for this corpus (polyqa mine-negatives)")
        if mined.settings["positive"] != c.positive:
            raise ConfigError(f"the negatives were mined for positive {mined.settings['positive']!r}, "
                              f"the export asks for {c.positive!r}", where=c.negatives)
        if mined.settings["num_negatives"] < c.num_negatives:
            raise ConfigError(f"the negatives hold {mined.settings['num_negatives']} per row, the export asks "
                              f"for {c.num_negatives}", where=c.negatives, todo="lower --num-negatives or mine more")
        return mined

    # --------------------------------------------------------------------------- the export

    def run(self) -> ExportResult:
        self._check_output()
        self.output.mkdir(parents=True, exist_ok=True)
        with locking.output_lock(self.output, f"polyqa export --format {self.config.format}"):
            earlier = self._up_to_date()
            if earlier is not None:
                self.progress(f"{self.output}: up to date (same corpus and settings, every file whole)")
                return ExportResult(self.output, earlier, up_to_date=True)
            if (self.output / OWNER_FILE).is_file():
                self._clear_earlier()
            owned_folders = [formats.WRITERS[self.config.format].subdir]
            if self.config.mine_model:
                owned_folders.append(NEGATIVES_DIR)
            storage.atomic_write_text(self.output / OWNER_FILE, json.dumps(
                {"written_by": f"polyqa {__version__}", "folders": owned_folders,
                 "files": [EXPORT_FILE, CARD_FILE, HELDOUT_FILE]}, indent=2) + "\n")
            (self.output / EXPORT_FILE).unlink(missing_ok=True)
            return self._write()

    def _write(self) -> ExportResult:
        c = self.config
        started = time.perf_counter()
        mined = self.negatives()
        selection = Selection(self.languages, self.pairs, c.positive, c.quality_filter,
                              frozenset(self.heldout), c.num_negatives if mined else 0)
        writer = formats.WRITERS[c.format](self.output, num_negatives=selection.num_negatives,
                                           keep_scores=c.keep_scores, query_prompt=c.query_prompt,
                                           languages=self.languages)
        if c.format == "beir":
            self._write_beir(writer, selection)
        else:
            tables = {lang: mined.table(lang) for lang in {y for _, y in self.pairs}} if mined else None
            from polyqa.export.examples import NegativeTexts

            texts = NegativeTexts(self.corpus, list(tables), tables) if tables else None
            try:
                for shard, batch in enumerate(iter_examples(self.corpus, selection, tables, texts), 1):
                    writer.add(batch)
                    self.progress(f"export: shard {shard}: {sum(selection.examples.values())} examples so far")
            finally:
                if texts is not None:
                    texts.close()
        files = writer.finish()
        if self.heldout:
            from polyqa.splits import write_titles

            write_titles(self.output / HELDOUT_FILE, self.heldout,
                         header=f"{len(self.heldout)} held-out articles of {self.corpus.name}")
            files.append(HELDOUT_FILE)
        manifest = self._manifest(selection, files, mined, time.perf_counter() - started)
        if c.format == "sentence-transformers":
            manifest["configs"] = writer.configs
        from polyqa.export.card import render_export_card

        storage.atomic_write_text(self.output / CARD_FILE, render_export_card(manifest))
        storage.atomic_write_text(self.output / EXPORT_FILE, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        self.progress(f"exported {sum(selection.examples.values())} {c.format} examples to {self.output}")
        return ExportResult(self.output, manifest)

    def _write_beir(self, writer: formats.BeirWriter, selection: Selection) -> None:
        """Evaluation folders: the held-out articles when there are any (else all), every question with a positive."""
        from polyqa.export.examples import COLUMNS

        keep = set(self.heldout) if self.heldout else None
        selection.heldout = frozenset()  # here held-out articles are what is exported
        for shard, tables in enumerate(reader.iter_parallel(self.corpus, self.languages, COLUMNS), 1):
            rows = {lang: tables[lang].to_pylist() for lang in self.languages}
            n = len(rows[self.languages[0]])
            for i in range(n):
                if keep is not None and rows[self.languages[0]][i]["title"] not in keep:
                    for lang in self.languages:  # trained on: not an evaluation query or document
                        selection.left_out.setdefault(lang, Counter())[SKIP_TRAINING_ARTICLE] += 1
                    continue
                relevant = {}
                for lang in self.languages:
                    row = rows[lang][i]
                    writer.add_documents(lang, documents(row, lang, selection.positive))
                    reason = selection.row_reason(row)
                    if reason:
                        selection.left_out.setdefault(lang, Counter())[reason] += 1
                    else:
                        relevant[lang] = positive_document(row, lang, selection.positive).id
                for lang in self.languages:
                    if lang in relevant:
                        writer.add_query(lang, rows[lang][i]["qa_id"], rows[lang][i]["question"], relevant)
                        selection.examples[f"{lang}-{lang}"] += 1
                        if writer.cross:
                            selection.examples[f"{lang}-all"] += 1
            self.progress(f"export: shard {shard}: {sum(selection.examples.values())} queries so far")

    def _manifest(self, selection: Selection, files: list[str], mined: MinedNegatives | None,
                  seconds: float) -> dict[str, Any]:
        c = self.config
        return {
            "kind": "polyqa-export",
            "written_by": f"polyqa {__version__}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "format": c.format,
            "corpus": str(self.corpus.resolve()),
            "corpus_name": self.corpus.name,
            "output": str(self.output.resolve()),
            "corpus_manifest_sha256": self.corpus_sha256,
            "settings": self.settings(),
            "languages": self.languages,
            "pairs": [f"{x}-{y}" for x, y in self.pairs],
            "heldout_articles": len(self.heldout),
            "counts": dict(sorted(selection.examples.items())),
            "left_out": {lang: dict(sorted(r.items())) for lang, r in sorted(selection.left_out.items())},
            "left_out_examples": {pair: dict(r) for pair, r in sorted(selection.left_out_pairs.items())},
            "negatives": None if mined is None else {
                "folder": str(mined.folder.resolve()), "description_sha256": sha256_file(mined.folder / "negatives.json"),
                "miner": mined.description["miner"], "settings": mined.settings,
                "texts_encoded_per_second": mined.description.get("texts_encoded_per_second"),
                "passages_encoded_per_second": mined.description.get("passages_encoded_per_second")},
            "files": {name: sha256_file(self.output / name) for name in files},
            "seconds": round(seconds, 3),
        }
