"""The model a checkpoint describes (ours or converted), built from its plain config."""

from __future__ import annotations

from torch import nn

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from .build import build_classifier, build_encoder, build_mae


def model_from_checkpoint(checkpoint: dict) -> nn.Module:
    """An untrained model with the checkpoint's architecture, for inference (load
    ``checkpoint["model"]`` into it): a classifier or probe (``extras.classifier``), a
    MaskedAutoencoder (decoder sizes in the config; the run's masking, decoder masking and
    pixel statistics), or a bare encoder wrapped so that its parameter names start with
    ``encoder.``. Stochastic depth is off: it only serves training."""
    config = checkpoint["config"]
    model_cfg = config["model"]
    spec = checkpoint.get("extras", {}).get("classifier")
    if spec is not None:
        return build_classifier(
            model_cfg["encoder"], spec["num_classes"], config.get("head", {}), probe=config.get("probe"),
            probe_heads=int(config.get("probe_heads", 8)), pos_embed_grid=spec.get("pos_embed_grid"), drop_path_rate=0.0,
        )  # fmt: skip
    if "decoder_dim" in model_cfg:
        data = config.get("data") or {}
        return build_mae(
            model_cfg, config.get("mask"), data.get("mean", IMAGENET_MEAN), data.get("std", IMAGENET_STD),
            decoder_mask_ratio=float(config.get("decoder_mask_ratio") or 0.0), drop_path_rate=0.0,
        )  # fmt: skip
    wrapper = nn.Module()
    wrapper.encoder = build_encoder(model_cfg["encoder"], drop_path_rate=0.0)
    return wrapper
