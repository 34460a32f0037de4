"""An embeddings folder: what ``vmae-extract`` writes and ``vmae-retrieve`` reads.

    meta.json                    how the vectors were made (checkpoint digest, model,
                                 pooling, frames, clips, dim, normalisation, dtype)
    embeddings_NNNNN.npy         [n, dim] L2-normalised video embeddings, one shard per
                                 ``shard_size`` rows of the data list
    clip_embeddings_NNNNN.npy    [n, clips, dim] L2-normalised clip embeddings (optional)
    index_NNNNN.csv              the shard's videos: row, path, label, clip spans (seconds)
    index.csv                    all shards' index rows, with shard and offset columns
    failed_NNNNN.csv, failed.csv the shard's / all videos that could not be read (row, path, reason)

Each shard is complete once its index part exists (written last, by rename), so an
interrupted extraction resumes at the first missing shard.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

INDEX_COLUMNS = ["row", "path", "label", "clips"]
FAILED_COLUMNS = ["row", "path", "reason"]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _csv_bytes(columns: list[str], rows: list[dict]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


class EmbeddingFolder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def meta_path(self) -> Path:
        return self.path / "meta.json"

    def read_meta(self) -> dict | None:
        return json.loads(self.meta_path.read_text(encoding="utf-8")) if self.meta_path.is_file() else None

    def start(self, meta: dict, identity_keys: tuple[str, ...]) -> None:
        """Writes ``meta.json``, or checks that an existing one describes the same
        extraction (``identity_keys`` equal), so shards of two extractions never mix."""
        self.path.mkdir(parents=True, exist_ok=True)
        old = self.read_meta()
        if old is not None:
            changed = [key for key in identity_keys if old.get(key) != meta.get(key)]
            if changed:
                raise ValueError(
                    f"{self.path} holds embeddings made differently ({', '.join(changed)}); use another output folder (hydra.run.dir=...)"
                )
        _atomic_write_bytes(self.meta_path, (json.dumps(meta, indent=1) + "\n").encode())

    def shard_done(self, shard: int) -> bool:
        return (self.path / f"index_{shard:05d}.csv").is_file()

    def write_shard(self, shard: int, videos: np.ndarray, clips: np.ndarray | None, index: list[dict], failed: list[dict]) -> None:
        _atomic_write_bytes(self.path / f"embeddings_{shard:05d}.npy", _npy_bytes(videos))
        if clips is not None:
            _atomic_write_bytes(self.path / f"clip_embeddings_{shard:05d}.npy", _npy_bytes(clips))
        _atomic_write_bytes(self.path / f"failed_{shard:05d}.csv", _csv_bytes(FAILED_COLUMNS, failed))
        # Last: its presence marks the shard complete.
        _atomic_write_bytes(self.path / f"index_{shard:05d}.csv", _csv_bytes(INDEX_COLUMNS, index))

    def _read_parts(self, stem: str, num_shards: int) -> list[list[dict]]:
        parts = []
        for shard in range(num_shards):
            with (self.path / f"{stem}_{shard:05d}.csv").open(newline="", encoding="utf-8") as handle:
                parts.append(list(csv.DictReader(handle)))
        return parts

    def finish(self, num_shards: int) -> tuple[int, int]:
        """Writes index.csv (every shard's rows with shard and offset) and failed.csv;
        returns (embedded videos, failed videos)."""
        rows = [
            {**row, "shard": shard, "offset": offset}
            for shard, part in enumerate(self._read_parts("index", num_shards))
            for offset, row in enumerate(part)
        ]
        failed = [row for part in self._read_parts("failed", num_shards) for row in part]
        _atomic_write_bytes(self.path / "index.csv", _csv_bytes(INDEX_COLUMNS + ["shard", "offset"], rows))
        _atomic_write_bytes(self.path / "failed.csv", _csv_bytes(FAILED_COLUMNS, failed))
        return len(rows), len(failed)

    def load(self) -> tuple[np.ndarray, list[dict]]:
        """(video embeddings [N, dim] as float32, index rows) in index order."""
        if not (self.path / "index.csv").is_file():
            raise FileNotFoundError(f"{self.path}: no index.csv (not an embeddings folder, or an unfinished extraction)")
        with (self.path / "index.csv").open(newline="", encoding="utf-8") as handle:
            index = list(csv.DictReader(handle))
        shards = sorted({int(r["shard"]) for r in index})
        vectors = [np.load(self.path / f"embeddings_{s:05d}.npy").astype(np.float32) for s in shards]
        matrix = np.concatenate(vectors) if vectors else np.zeros((0, (self.read_meta() or {}).get("dim", 0)), np.float32)
        if matrix.shape[0] != len(index):
            raise ValueError(f"{self.path}: index.csv lists {len(index)} videos but the shards hold {matrix.shape[0]}")
        return matrix, index
