"""`polyqa evaluate`: zero-shot retrieval evaluation on XQuAD-R, MLQA-R or MIRACL.

Works the same for any SentenceTransformer (a fine-tuned polyqa model folder, a
hub id, or ``minilm`` for the bundled offline all-MiniLM-L6-v2), so baselines
and fine-tuned models sit side by side. Writes OUT.json, OUT.md and (for
LAReQA benchmarks) OUT.heatmap.png.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="Zero-shot retrieval evaluation (XQuAD-R, MLQA-R: mAP, R@k, rank distance; MIRACL: nDCG@10, Recall@100).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True,
                   help="SentenceTransformer folder or hub id; 'minilm' = bundled all-MiniLM-L6-v2")
    p.add_argument("--benchmark", required=True, choices=["xquad-r", "mlqa-r", "miracl"])
    p.add_argument("--data-dir", default=None,
                   help="local benchmark folder (LAReQA: <lang>.json files; MIRACL: its topics/qrels/corpus layout); "
                        "for xquad-r it may be omitted (or a hub id given): google-research-datasets/xquad_r is "
                        "read from the hub and its paragraphs segmented by polyqa (needs network)")
    p.add_argument("--output", required=True, help="OUT.json (OUT.md and OUT.heatmap.png are written beside it)")
    p.add_argument("--candidates", choices=["sentence", "sentence+context"], default="sentence+context",
                   help="encode candidate sentences alone or as 'sentence <sep> paragraph' (LAReQA); default %(default)s")
    p.add_argument("--languages", default=None, help="comma-separated subset, any spelling (ar,de or arb_Arab,...)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--max-questions", type=int, default=None, help="keep the first N question ids (quick runs)")
    p.add_argument("--articles-file", default=None,
                   help="evaluate only articles with these titles (one per line, or a JSON list): held-out splits")
    p.add_argument("--exclude-titles", default=None, help="file of article titles to leave out")
    p.add_argument("--query-prompt", default="", help="text prepended to queries, e.g. 'query: '")
    p.add_argument("--passage-prompt", default="", help="text prepended to candidates, e.g. 'passage: '")
    p.add_argument("--split", default="dev", help="MIRACL split (default %(default)s)")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache for resuming (default: OUT.embcache/ next to OUT.json)")
    p.add_argument("--no-cache", action="store_true", help="do not save or reuse embeddings on disk")
    p.add_argument("--chunk-size", type=int, default=1024, help="queries per scoring matrix product")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from polyqa.evaluate.benchmarks import BenchmarkFormatError
    from polyqa.evaluate.report import output_paths
    from polyqa.evaluate.run import EvaluationConfig, run_evaluation
    from polyqa.languages import UnknownLanguageError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    paths = output_paths(args.output)
    cache_dir = None if args.no_cache else (args.cache_dir or str(paths["json"].with_suffix(".embcache")))
    config = EvaluationConfig(
        model=args.model,
        benchmark=args.benchmark,
        data_dir=args.data_dir,
        output=str(paths["json"]),
        candidates=args.candidates,
        languages=[x.strip() for x in args.languages.split(",") if x.strip()] if args.languages else None,
        batch_size=args.batch_size,
        device=args.device,
        max_questions=args.max_questions,
        articles_file=args.articles_file,
        exclude_titles_file=args.exclude_titles,
        query_prompt=args.query_prompt,
        passage_prompt=args.passage_prompt,
        split=args.split,
        cache_dir=cache_dir,
        chunk_size=args.chunk_size,
    )
    try:
        result = run_evaluation(config)
    except (FileNotFoundError, BenchmarkFormatError, UnknownLanguageError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    s = result["settings"]
    if result["benchmark"] == "miracl":
        m = s["monolingual"]
        print(f"MIRACL nDCG@10 {m['nDCG@10']:.4f}  Recall@100 {m['Recall@100']:.4f}")
    else:
        print(f"mAP mono {s['monolingual']['mAP']:.4f}  cross {s['cross-lingual']['mAP'] or float('nan'):.4f}  "
              f"multi {s['multilingual']['mAP']:.4f}  rank distance {result['rank_distance']['mean'] or float('nan'):.1f}")
    print(f"wrote {paths['json']}")
    return 0
