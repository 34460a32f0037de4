"""vmae-retrieve: nearest-neighbour search over an embeddings folder, and its evaluation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def _embed_query_videos(args: argparse.Namespace, meta: dict) -> tuple[np.ndarray, list[dict]]:
    """Embeds --list / --videos queries the way the gallery was embedded (its meta.json)."""
    from omegaconf import OmegaConf

    from ..data.lists import VideoRecord, read_data_list
    from ..data.transforms import EvalClipTransform
    from ..engine.device import resolve_device, resolve_precision
    from ..tasks.extract import embed_records, file_digest, load_model_and_data

    checkpoint = str(args.checkpoint or meta["checkpoint"])
    if file_digest(checkpoint) != meta["checkpoint_sha256"]:
        print(f"vmae-retrieve: warning: {checkpoint} is not the checkpoint the gallery was embedded with", file=sys.stderr)
    cfg = OmegaConf.create(
        {"checkpoint": checkpoint, "root": None, "num_workers": 0, "reader": None,
         "sampling": meta["sampling"], "sampling_rate": meta["sampling_rate"]}
    )  # fmt: skip
    model, data, _ = load_model_and_data(cfg)
    if args.list is not None:
        records = read_data_list(args.list, data.root)
    else:
        records = [VideoRecord(row=i, path=str(p), label=-1) for i, p in enumerate(args.videos)]
    device = resolve_device(args.device)
    model.to(device)
    transform = EvalClipTransform(data.crop_size, data.mean, data.std, meta["short_side"], num_crops=1, normalize=False)
    videos, _, index, failed = embed_records(
        model,
        data,
        records,
        transform,
        meta["num_clips"],
        "float32",
        False,
        4,
        32,
        device,
        resolve_precision("auto", device, int(model.encoder.embed_dim)),
    )
    for row in failed:
        print(f"vmae-retrieve: warning: {row['path']}: {row['reason']} (not searched)", file=sys.stderr)
    return videos, index


def retrieve(argv: list[str] | None = None) -> int:
    """vmae-retrieve: nearest gallery videos for query videos, and retrieval metrics."""
    parser = argparse.ArgumentParser(
        prog="vmae-retrieve",
        description="Search an embeddings folder (from vmae-extract) with queries: another embeddings folder, "
        "a data list, or video files. Cosine similarity; FAISS when installed, else exact chunked search.",
    )
    parser.add_argument("gallery", type=Path, help="embeddings folder to search")
    queries = parser.add_mutually_exclusive_group(required=True)
    queries.add_argument("--queries", type=Path, help="an embeddings folder of query videos")
    queries.add_argument("--list", type=Path, help="a data list of query videos (embedded like the gallery)")
    queries.add_argument("--videos", type=Path, nargs="+", help="query video files (embedded like the gallery)")
    parser.add_argument("--checkpoint", type=Path, help="for --list/--videos: the model (default: the gallery's)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--out", type=Path, help="results as .csv or .json (default: CSV on standard output)")
    parser.add_argument("--eval", action="store_true", help="recall@1/5/10 and mAP from the labels (queries and gallery need them)")
    parser.add_argument("--metrics", type=Path, help="with --eval: also write the metrics to this JSON file")
    parser.add_argument("--backend", default="auto", choices=["auto", "faiss", "exact"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.eval and args.videos:
        parser.error("--eval needs labelled queries: use --queries or --list")

    import csv as csv_module

    from ..checkpoint import CheckpointError
    from ..embedding_store import EmbeddingFolder
    from ..engine.search import FaissSearch, make_index, retrieval_metrics

    try:
        gallery_folder = EmbeddingFolder(args.gallery)
        gallery, gallery_index = gallery_folder.load()
        meta = gallery_folder.read_meta() or {}
        if args.queries is not None:
            query_vectors, query_index = EmbeddingFolder(args.queries).load()
            if query_vectors.shape[1] != gallery.shape[1]:
                raise ValueError(f"queries have {query_vectors.shape[1]} dimensions, the gallery {gallery.shape[1]}")
        else:
            query_vectors, query_index = _embed_query_videos(args, meta)
            if query_vectors.shape[1] != gallery.shape[1]:
                raise ValueError(
                    f"{args.checkpoint}: embeds into {query_vectors.shape[1]} dimensions, the gallery "
                    f"{args.gallery} into {gallery.shape[1]}; embed the queries with the gallery's model "
                    "(leave out --checkpoint)"
                )
        if len(query_index) == 0:
            raise ValueError("no query could be embedded")
        index = make_index(gallery, args.backend)
        search = "FAISS (exact inner product)" if isinstance(index, FaissSearch) else "exact search (NumPy, chunked)"
        print(f"vmae-retrieve: {len(query_index)} queries against {len(gallery_index)} gallery videos, {search}", file=sys.stderr)
        scores, neighbours = index.search(query_vectors.astype("float32"), args.top_k)
    except (FileNotFoundError, ValueError, CheckpointError) as err:
        print(f"vmae-retrieve: error: {err}", file=sys.stderr)
        return 2
    results = []
    for q, query in enumerate(query_index):
        for rank, (g, score) in enumerate(zip(neighbours[q], scores[q]), start=1):
            item = gallery_index[int(g)]
            results.append({
                "query_row": query["row"], "query_path": query["path"], "query_label": query["label"], "rank": rank,
                "gallery_row": item["row"], "gallery_path": item["path"], "gallery_label": item["label"],
                "score": round(float(score), 6),
            })  # fmt: skip
    if args.out is not None and args.out.suffix == ".json":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    else:
        handle = args.out.open("w", newline="", encoding="utf-8") if args.out is not None else sys.stdout
        writer = csv_module.DictWriter(handle, fieldnames=list(results[0]) if results else ["query_row"])
        writer.writeheader()
        writer.writerows(results)
        if args.out is not None:
            handle.close()
    if args.eval:
        metrics = retrieval_metrics(
            query_vectors.astype("float32"),
            [int(r["label"]) for r in query_index],
            gallery,
            [int(r["label"]) for r in gallery_index],
        )
        text = json.dumps(metrics, indent=1)
        print(text, file=sys.stderr if args.out is None else sys.stdout)
        if args.metrics is not None:
            args.metrics.write_text(text + "\n", encoding="utf-8")
    return 0
