"""The corpus contract: one Arrow row per (qa_id, language).

Other trainers read these columns directly, so changes here bump
``SCHEMA_VERSION`` and are listed in the README's corpus section.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1.1"  # 1.1: answer_sentence_source; answer_projection "marker"

# How an answer's start offset in a row's passage was obtained.
PROJECTION_SOURCE = "source"  # given by the source data (English, imported corpora)
# Read between markers in a second translation of the answer's sentence with the answer wrapped
# in them (EasyProject), and found in the unmarked translation of that sentence.
PROJECTION_MARKER = "marker"
PROJECTION_EXACT = "exact"  # translated answer found verbatim in the translated passage
PROJECTION_NORMALIZED = "normalized"  # found after case/punctuation/whitespace normalisation
PROJECTION_FUZZY = "fuzzy"  # best fuzzy match above the configured threshold
PROJECTION_NONE = "none"  # not found: answer_start is null
PROJECTION_KINDS = (
    PROJECTION_SOURCE,
    PROJECTION_MARKER,
    PROJECTION_EXACT,
    PROJECTION_NORMALIZED,
    PROJECTION_FUZZY,
    PROJECTION_NONE,
)

# Where a row's answer_sentence comes from. Passages are translated sentence by sentence, so the
# English answer's sentence index holds in every translation whether or not the span is found.
SENTENCE_SOURCE = "source"  # given by the source data (English, imported corpora)
SENTENCE_ALIGNED = "aligned"  # translated row: the English row's index
SENTENCE_NONE = "none"  # no answer sentence: answer_sentence is null
SENTENCE_SOURCES = (SENTENCE_SOURCE, SENTENCE_ALIGNED, SENTENCE_NONE)

CORPUS_SCHEMA = pa.schema(
    [
        pa.field("qa_id", pa.string(), nullable=False),
        pa.field("passage_id", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),  # NLLB code, e.g. deu_Latn
        pa.field("title", pa.string()),  # article title; training/evaluation splits group by it
        pa.field("question", pa.string(), nullable=False),
        pa.field("passage", pa.string(), nullable=False),
        # The passage is exactly "".join(sentences) up to the separators in sentence_starts.
        pa.field("sentences", pa.list_(pa.string()), nullable=False),
        pa.field("sentence_starts", pa.list_(pa.int32()), nullable=False),
        pa.field("answer_text", pa.string()),
        pa.field("answer_start", pa.int32()),  # character offset in passage, null if unprojected
        pa.field("answer_sentence", pa.int32()),  # index into sentences, null when there is none
        pa.field("answer_sentence_source", pa.string(), nullable=False),  # one of SENTENCE_SOURCES
        pa.field("answer_projection", pa.string(), nullable=False),  # one of PROJECTION_KINDS
        pa.field("source", pa.string(), nullable=False),  # source dataset name
        pa.field("license", pa.string()),
        pa.field("translated", pa.bool_(), nullable=False),  # False for original text
        # Quality scores of this row's text (all null/neutral for untranslated rows).
        pa.field("quality_langid", pa.string()),  # language detected in the passage
        pa.field("quality_langid_score", pa.float32()),
        pa.field("quality_length_ratio", pa.float32()),  # translated / source characters
        pa.field("quality_repetition", pa.float32()),  # share of repeated word n-grams
        pa.field("quality_flags", pa.list_(pa.string()), nullable=False),  # reasons a check failed
        pa.field("quality_pass", pa.bool_(), nullable=False),
    ],
    metadata={"polyqa.schema_version": SCHEMA_VERSION},
)

# Rows that could not be used: kept with the reason, never dropped silently.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),  # file or dataset name
        pa.field("row", pa.int64()),  # row/record index within the source, when known
        pa.field("field", pa.string()),  # offending field, when known
        pa.field("reason", pa.string(), nullable=False),
        pa.field("record", pa.string()),  # the raw record as JSON
    ]
)
