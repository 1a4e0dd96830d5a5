"""polyqa: parallel multilingual QA corpora and hybrid-batch multilingual retrievers."""

__version__ = "0.1.0"
