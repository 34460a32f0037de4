"""Nearest-neighbour search over L2-normalised embeddings, and retrieval metrics.

FAISS (``IndexFlatIP``, exact) is used when ``faiss-cpu`` is installed; otherwise an
exact search by chunked matrix products, whose memory is bounded by the chunk
sizes rather than by the gallery size. Both return the same neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

BACKENDS = ("auto", "faiss", "exact")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class ExactSearch:
    """Inner-product top-k over ``gallery`` [N, D] with chunks of ``query_chunk`` queries
    times ``gallery_chunk`` gallery vectors at a time."""

    def __init__(self, gallery: np.ndarray, query_chunk: int = 1024, gallery_chunk: int = 65536) -> None:
        self.gallery = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32))
        self.query_chunk = query_chunk
        self.gallery_chunk = gallery_chunk

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores [Q, k], gallery indices [Q, k]), best first."""
        k = min(k, self.gallery.shape[0])
        queries_t = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        all_scores, all_indices = [], []
        for q in queries_t.split(self.query_chunk):
            best_scores = torch.empty(q.shape[0], 0)
            best_indices = torch.empty(q.shape[0], 0, dtype=torch.long)
            for start in range(0, self.gallery.shape[0], self.gallery_chunk):
                scores = q @ self.gallery[start : start + self.gallery_chunk].T
                top = scores.topk(min(k, scores.shape[1]), dim=1)
                merged_scores = torch.cat([best_scores, top.values], dim=1)
                merged_indices = torch.cat([best_indices, top.indices + start], dim=1)
                keep = merged_scores.topk(min(k, merged_scores.shape[1]), dim=1)
                best_scores, best_indices = keep.values, merged_indices.gather(1, keep.indices)
            all_scores.append(best_scores)
            all_indices.append(best_indices)
        return torch.cat(all_scores).numpy(), torch.cat(all_indices).numpy()


class FaissSearch:
    """FAISS ``IndexFlatIP``: exact inner-product search."""

    def __init__(self, gallery: np.ndarray) -> None:
        import faiss  # optional: faiss-cpu is the [retrieval] extra

        self.index = faiss.IndexFlatIP(gallery.shape[1])
        self.index.add(np.ascontiguousarray(gallery, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.index.ntotal)
        scores, indices = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, indices.astype(np.int64)


def make_index(gallery: np.ndarray, backend: str = "auto") -> ExactSearch | FaissSearch:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if gallery.ndim != 2 or gallery.shape[0] == 0:
        raise ValueError(f"the gallery must be a non-empty [N, D] matrix, got shape {list(gallery.shape)}")
    if backend == "faiss" or (backend == "auto" and faiss_available()):
        if not faiss_available():
            raise ValueError("backend=faiss but faiss is not installed (pip install faiss-cpu)")
        return FaissSearch(gallery)
    return ExactSearch(gallery)


def retrieval_metrics(
    queries: np.ndarray,
    query_labels: Sequence[int],
    gallery: np.ndarray,
    gallery_labels: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    query_chunk: int = 1024,
) -> dict:
    """recall@k (a query counts when one of its k nearest gallery items shares its
    label) and mAP over the full ranking of the gallery, in %. Queries whose label
    does not occur in the gallery are left out of both and counted."""
    q_labels = np.asarray(query_labels)
    g_labels = np.asarray(gallery_labels)
    present = np.isin(q_labels, g_labels)
    g = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32))
    hits = {k: 0 for k in ks}
    average_precisions = []
    for start in range(0, queries.shape[0], query_chunk):
        q = torch.from_numpy(np.ascontiguousarray(queries[start : start + query_chunk], dtype=np.float32))
        # Stable order for ties: higher score first, then lower gallery index.
        order = torch.argsort(-(q @ g.T), dim=1, stable=True).numpy()
        for i, ranking in enumerate(order):
            if not present[start + i]:
                continue
            relevant = g_labels[ranking] == q_labels[start + i]
            for k in ks:
                hits[k] += bool(relevant[:k].any())
            positions = np.flatnonzero(relevant) + 1
            average_precisions.append(float(np.mean(np.arange(1, len(positions) + 1) / positions)))
    scored = int(present.sum())
    if scored == 0:
        raise ValueError("no query label occurs in the gallery: nothing to score")
    metrics = {f"recall@{k}": 100.0 * hits[k] / scored for k in ks}
    metrics["mAP"] = 100.0 * float(np.mean(average_precisions))
    metrics["queries"] = scored
    metrics["queries_without_match"] = int((~present).sum())
    metrics["gallery"] = int(gallery.shape[0])
    return metrics
