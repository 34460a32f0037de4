"""Checkpoint interop: official VideoMAE v1/V2 ``.pth`` files and Hugging Face
``transformers`` VideoMAE directories in, Hugging Face directories out.

    from video_mae.convert import convert_checkpoint, export_huggingface
    checkpoint = convert_checkpoint("videomae-base/")          # a transformers directory
    checkpoint = convert_checkpoint("checkpoint.pth", preset)  # official, with a model= preset
    export_huggingface("runs/finetune/x/checkpoints/best.pt", "exported/")
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..models.from_checkpoint import model_from_checkpoint
from ..models.key_check import StateMismatch, load_fitting
from .hf import ConversionError, hf_to_ours, read_hf_dir, write_hf_dir
from .official import official_to_ours
from .safe_load import UnsafeCheckpoint, load_foreign_checkpoint


def convert_checkpoint(source: str | Path, preset: dict | None = None, num_frames: int = 16, img_size: int = 224) -> dict:
    """Our checkpoint dict for a transformers directory (architecture from its
    config.json) or an official ``.pth`` (architecture from ``preset``, a model
    config such as conf/model/vit_b.yaml; clip shape from ``num_frames`` / ``img_size``)."""
    source = Path(source)
    if source.is_dir():
        config, state = read_hf_dir(source)
        checkpoint = hf_to_ours(config, state, str(source))
        try:
            model = model_from_checkpoint(checkpoint)
        except (AssertionError, ValueError, TypeError, RuntimeError) as err:
            raise ConversionError(f"{source / 'config.json'}: describes a model that cannot be built ({err})") from None
        try:
            load_fitting(model, checkpoint["model"], f"{source / 'config.json'} and its weights")
        except StateMismatch as err:
            raise ConversionError(str(err)) from None
        return checkpoint
    if preset is None:
        raise ConversionError(f"{source}: an official checkpoint needs the architecture (model=vit_b, ...)")
    return official_to_ours(source, preset, num_frames=num_frames, img_size=img_size)


def export_huggingface(checkpoint: str | Path | dict, folder: str | Path) -> Path:
    """Writes one of our pretraining or classification checkpoints as a transformers directory."""
    state = load_checkpoint(checkpoint) if not isinstance(checkpoint, dict) else checkpoint
    metrics = None
    if not isinstance(checkpoint, dict):
        # A run folder's checkpoints/<name>.pt: its evaluation lies in the folder above.
        report = Path(checkpoint).resolve().parent.parent / "metrics.json"
        try:
            metrics = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else None
        except (OSError, ValueError):
            metrics = None
    return write_hf_dir(state, folder, metrics if isinstance(metrics, dict) else None)


__all__ = [
    "ConversionError",
    "UnsafeCheckpoint",
    "model_from_checkpoint",
    "convert_checkpoint",
    "export_huggingface",
    "load_foreign_checkpoint",
]
