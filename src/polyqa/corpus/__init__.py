"""The parallel corpus: its contract, and the build that makes it.

- ``schema``, ``reader``, ``writer``, ``validate``: the corpus format, reading, atomic writing, checking.
- ``config``: :class:`BuildConfig`, what a build makes (``load_config``).
- ``ingest``: sources -> staged English records and the quarantine.
- ``rows``: staged records -> the rows of one language, and their statistics.
- ``engines``: the translation engine of each process.
- ``job``: :class:`BuildJob`, one build (open, units, record, finish), and ``build_corpus``.
- ``manifest``: ``manifest.json``, its shape and accessors.
"""
