"""Every model built one way: encoder, masked autoencoder and classifier from plain settings.

The settings are the ``model`` part of a config as plain containers (what a checkpoint
stores, what ``conf/model/*.yaml`` resolves to): ``_target_`` keys are ignored, every other
key is a constructor argument, so a key the model does not take is an error naming it.
Tasks, the benchmarks, the converters and checkpoint loading all build through here.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..masking import Masking, RandomMasking, RunningCellMasking, TubeMasking
from .classifier import VideoClassifier
from .mae import MaskedAutoencoder
from .probe import ProbeClassifier
from .vit import VisionTransformer3D

# Maskings by class name. A registry, not an import of whatever ``_target_`` names: checkpoints
# load with weights_only=True, and their configs must not be a way to import code either.
MASKINGS = {"TubeMasking": TubeMasking, "RandomMasking": RandomMasking}
# VideoMAE's masking, for converted weights whose configs store none.
DEFAULT_MASK = {"_target_": "video_mae.masking.TubeMasking", "ratio": 0.9}


def _arguments(settings: dict) -> dict:
    return {key: value for key, value in settings.items() if key != "_target_"}


def build_encoder(
    encoder: dict,
    final_norm: bool | None = None,
    pos_embed_grid: Sequence[int] | None = None,
    drop_path_rate: float | None = None,
) -> VisionTransformer3D:
    """The encoder ``encoder`` (a ``model.encoder`` config) describes. Each argument given
    replaces the config's value: ``final_norm`` (classifiers decide it by their head),
    ``pos_embed_grid`` (the grid the positional table comes from: a fine-tuned model on
    another clip shape), ``drop_path_rate`` (0.0 for inference)."""
    arguments = _arguments(encoder)
    if final_norm is not None:
        arguments["final_norm"] = final_norm
    if pos_embed_grid:
        arguments["pos_embed_grid"] = tuple(pos_embed_grid)
    if drop_path_rate is not None:
        arguments["drop_path_rate"] = drop_path_rate
    return VisionTransformer3D(**arguments)


def build_masking(mask: dict | None) -> Masking:
    """The masking a ``mask`` config describes (``{"_target_": ...TubeMasking, "ratio", ...}``);
    VideoMAE's tube masking at 0.9 for None (converted weights)."""
    mask = mask or DEFAULT_MASK
    name = str(mask.get("_target_", "TubeMasking")).rsplit(".", 1)[-1]
    if name not in MASKINGS:
        raise ValueError(f"mask._target_={mask.get('_target_')!r}: not a masking this version knows ({', '.join(MASKINGS)})")
    return MASKINGS[name](**_arguments(mask))


def build_mae(
    model: dict,
    mask: dict | None,
    pixel_mean: Sequence[float] = IMAGENET_MEAN,
    pixel_std: Sequence[float] = IMAGENET_STD,
    decoder_mask_ratio: float = 0.0,
    drop_path_rate: float | None = None,
) -> MaskedAutoencoder:
    """The masked autoencoder a ``model`` config (``encoder`` plus decoder keys) and a ``mask``
    config describe, for clips normalised with ``pixel_mean`` / ``pixel_std``. A
    ``decoder_mask_ratio`` above 0 adds VideoMAE V2's running-cell decoder masking."""
    settings = _arguments(model)
    encoder = build_encoder(settings.pop("encoder"), drop_path_rate=drop_path_rate)
    return MaskedAutoencoder(
        encoder,
        build_masking(mask),
        pixel_mean=tuple(pixel_mean),
        pixel_std=tuple(pixel_std),
        decoder_masking=RunningCellMasking(decoder_mask_ratio) if decoder_mask_ratio else None,
        **settings,
    )


def classifier_final_norm(probe: str | None, mean_pooling: bool) -> bool:
    """Whether a classifier's encoder ends with its norm: probes read normalised tokens;
    a mean-pooling head moves the norm after the pooling (VideoMAE's fc_norm)."""
    return probe is not None or not mean_pooling


def build_classifier(
    encoder: dict,
    num_classes: int,
    head: dict,
    probe: str | None = None,
    probe_heads: int = 8,
    pos_embed_grid: Sequence[int] | None = None,
    drop_path_rate: float | None = None,
) -> nn.Module:
    """A fine-tuning classifier, or with ``probe`` (linear | attentive) a probe on the frozen
    encoder. ``head``: the ``head`` config (mean_pooling, dropout, init_scale, fc_norm_eps)."""
    mean_pooling = bool(head.get("mean_pooling", True))
    vit = build_encoder(encoder, classifier_final_norm(probe, mean_pooling), pos_embed_grid, drop_path_rate)
    if probe is not None:
        return ProbeClassifier(vit, num_classes, kind=str(probe), num_heads=int(probe_heads))
    return VideoClassifier(
        vit,
        num_classes,
        mean_pooling=mean_pooling,
        head_dropout=float(head.get("dropout", 0.0)),
        head_init_scale=float(head.get("init_scale", 0.001)),
        fc_norm_eps=head.get("fc_norm_eps"),
    )
