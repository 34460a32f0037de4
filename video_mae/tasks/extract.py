"""Clip and video embeddings for a whole data list (``vmae-extract``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from ..checkpoint import load_checkpoint
from ..data.dataset import BadVideoLog
from ..data.list_check import check_list
from ..data.lists import VideoRecord, read_data_list
from ..data.loader import evaluation_loader
from ..data.settings import DataSettings
from ..data.transforms import ClipNormalizer, EvalClipTransform
from ..distributed import barrier
from ..embedding_store import EmbeddingFolder
from ..engine.embed import clip_features, extract_embeddings
from ..models.from_checkpoint import model_from_checkpoint
from ..models.key_check import load_fitting
from ..run_files import RunFiles
from .run_dir import hydra_output_dir
from .run_lock import lock_run_folder
from .session import task_session

log = logging.getLogger(__name__)

# Keys of the trained run's data config that extraction may replace.
DATA_OVERRIDES = ("root", "num_workers", "reader", "sampling", "sampling_rate", "decode_timeout_s")
# What must be equal for a resumed extraction to add shards to an existing folder.
IDENTITY = ("checkpoint_sha256", "list_sha256", "num_clips", "num_frames", "sampling", "sampling_rate",
            "crop_size", "short_side", "pooling", "dtype", "shard_size", "per_clip")  # fmt: skip


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def records_digest(records: Sequence[VideoRecord]) -> str:
    text = "".join(f"{r.row}\t{r.path}\t{r.label}\t{r.start}\t{r.end}\n" for r in records)
    return hashlib.sha256(text.encode()).hexdigest()


def load_model_and_data(cfg: DictConfig) -> tuple[torch.nn.Module, DataSettings, dict]:
    """The checkpoint's model (weights loaded, eval mode) and its data settings with
    the overrides ``cfg`` gives (root, workers, reader, sampling)."""
    state = load_checkpoint(cfg.checkpoint)
    model = model_from_checkpoint(state)
    load_fitting(model, state["model"], str(cfg.checkpoint))
    trained = OmegaConf.create(state["config"])
    for key in DATA_OVERRIDES:
        if cfg.get(key) is not None:
            trained.data[key] = cfg[key]
    data: DataSettings = instantiate(trained.data, _convert_="all")
    return model.eval(), data, state


def select_records(cfg: DictConfig, data: DataSettings) -> tuple[list[VideoRecord], str]:
    if cfg.list is not None:
        return read_data_list(cfg.list, data.root), str(cfg.list)
    if cfg.split not in ("train", "val"):
        raise ValueError(f"split must be train or val (the checkpoint's data lists), got {cfg.split!r}; or give list=")
    train, val = data.records()
    if cfg.split == "val" and not val:
        raise ValueError("the checkpoint's data has no validation list; give list=<data list>")
    return (train if cfg.split == "train" else val), f"{data.name} {cfg.split} list"


def embed_records(
    model: torch.nn.Module,
    data: DataSettings,
    records: Sequence[VideoRecord],
    transform: EvalClipTransform,
    num_clips: int,
    dtype: str,
    per_clip: bool,
    batch_size: int,
    clips_per_forward: int,
    device: torch.device,
    precision: str,
    bad_videos: BadVideoLog | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[dict], list[dict]]:
    """(video embeddings [n, dim], clip embeddings [n, K, dim] or None, index rows,
    failed rows) for ``records``, in list order; unreadable videos are only in ``failed``."""
    pin = data.pin_memory and device.type == "cuda"
    loader = evaluation_loader(records, data, transform, num_clips, batch_size, pin, bad_videos)
    result = extract_embeddings(model, loader, device, precision, clips_per_forward, ClipNormalizer(data.mean, data.std))
    np_dtype = np.float16 if dtype == "float16" else np.float32
    dim = int(model.encoder.embed_dim)
    videos = result.videos.numpy().astype(np_dtype) if result.videos is not None else np.zeros((0, dim), np_dtype)
    clips = None
    if per_clip:
        clips = result.clips.numpy().astype(np_dtype) if result.clips is not None else np.zeros((0, num_clips, dim), np_dtype)
    by_row = {r.row: r for r in records}
    index = [
        {
            "row": row,
            "path": by_row[row].path,
            "label": by_row[row].label,
            "clips": ";".join(f"{a:.3f}-{b:.3f}" for a, b in spans.tolist()),
        }
        for row, spans in zip(result.rows, result.spans)
    ]
    failed = [{"row": row, "path": by_row[row].path, "reason": reason} for row, reason in result.failed]
    return videos, clips, index, failed


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict:
    """Embeds every video of the list into ``run_dir`` (see :mod:`video_mae.embedding_store`);
    re-running the same command continues an interrupted extraction."""
    out = EmbeddingFolder(Path(run_dir) if run_dir is not None else hydra_output_dir())
    model, data, state = load_model_and_data(cfg)
    records, source = select_records(cfg, data)
    check_list(records, source, None)
    if cfg.dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {cfg.dtype!r}")
    if int(cfg.num_clips) < 1 or int(cfg.shard_size) < 1:
        raise ValueError(f"num_clips and shard_size must be at least 1, got {cfg.num_clips} and {cfg.shard_size}")
    with task_session(cfg.device, cfg.precision, int(model.encoder.embed_dim)) as session:
        device, context, precision = session.device, session.context, session.precision
        if context.is_main:
            lock_run_folder(out.path)
        model.to(device)
        meta = {
            "checkpoint": str(cfg.checkpoint),
            "checkpoint_sha256": file_digest(cfg.checkpoint),
            "list": source,
            "list_sha256": records_digest(records),
            "videos_in_list": len(records),
            "model": state["config"]["model"]["encoder"],
            "pooling": clip_features(model)[1],
            "num_clips": int(cfg.num_clips),
            "num_frames": data.num_frames,
            "sampling": data.sampling,
            "sampling_rate": data.sampling_rate,
            "crop_size": data.crop_size,
            "short_side": cfg.short_side,
            "dim": int(model.encoder.embed_dim),
            "normalisation": "each clip L2-normalised, averaged over the video's clips, L2-normalised again",
            "dtype": str(cfg.dtype),
            "shard_size": int(cfg.shard_size),
            "per_clip": bool(cfg.per_clip),
        }
        if context.is_main:
            out.start(meta, IDENTITY)
        barrier(context)
        transform = EvalClipTransform(data.crop_size, data.mean, data.std, cfg.short_side, num_crops=1, normalize=False)
        bad_videos = BadVideoLog(RunFiles(out.path).bad_videos)
        size = int(cfg.shard_size)
        num_shards = max(1, -(-len(records) // size))
        # Under torchrun, shard i belongs to rank i % ranks.
        todo = [s for s in range(num_shards) if s % context.world_size == context.rank and not out.shard_done(s)]
        log.info("%s: %d videos in %d shards, %d to do here -> %s", source, len(records), num_shards, len(todo), out.path)
        bar = tqdm(total=len(todo) * size, desc="videos", disable=not cfg.progress_bar or not context.is_main)
        for shard in todo:
            part = records[shard * size : (shard + 1) * size]
            videos, clips, index, failed = embed_records(
                model, data, part, transform, int(cfg.num_clips), cfg.dtype, bool(cfg.per_clip),
                int(cfg.batch_size), int(cfg.clips_per_forward), device, precision, bad_videos,
            )  # fmt: skip
            out.write_shard(shard, videos, clips, index, failed)
            bar.update(len(part))
        bar.close()
        barrier(context)
        embedded, failed = out.finish(num_shards) if context.is_main else (None, None)
        return {"out": str(out.path), "videos": embedded, "failed": failed, "dim": meta["dim"], "list": source}
