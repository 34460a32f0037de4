"""Our checkpoint layout for weights that come from elsewhere.

A converted checkpoint looks like one of ours: ``model`` (our parameter names),
``config`` (plain containers our tasks instantiate) and, for classifiers,
``extras.classifier``; so it works as ``pretrained=`` for fine-tuning and as
``checkpoint=`` for evaluation. ``converted_from`` records the source.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict

from ..data.settings import DataSettings
from ..models.vit import VisionTransformer3D


def encoder_config(
    img_size: int,
    patch_size: int,
    num_frames: int,
    tubelet_size: int,
    in_chans: int,
    embed_dim: int,
    depth: int,
    num_heads: int,
    mlp_ratio: float,
    qkv_bias: bool,
    norm_eps: float,
    final_norm: bool,
) -> dict:
    """A ``model.encoder`` config: these values, and every other argument of the encoder at
    its default (read from the constructor, so that an argument added there reaches
    converted configs too). ``pos_embed_grid`` is left out: fine-tuning sets it."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(VisionTransformer3D).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name != "pos_embed_grid"
    }
    given = dict(
        img_size=img_size, patch_size=patch_size, num_frames=num_frames, tubelet_size=tubelet_size, in_chans=in_chans,
        embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, norm_eps=norm_eps,
        final_norm=final_norm,
    )  # fmt: skip
    return {"_target_": "video_mae.models.vit.VisionTransformer3D", **defaults, **given}


def data_config(num_frames: int, img_size: int, num_classes: int | None = None) -> dict:
    """Data settings for a converted model: its clip shape, ImageNet statistics, VideoMAE's
    Kinetics sampling stride (4) and every other field at DataSettings' default (taken from
    the class, so none goes missing). Lists and the rest are set where the model is used."""
    settings = DataSettings(name="converted", num_frames=num_frames, sampling_rate=4, crop_size=img_size, num_classes=num_classes)
    fields = asdict(settings)
    fields.update(mean=list(settings.mean), std=list(settings.std))
    return {"_target_": "video_mae.data.settings.DataSettings", **fields}


def pretraining_checkpoint(state: dict, encoder: dict, decoder: dict | None, norm_pix_loss: bool, source: dict) -> dict:
    """``decoder``: decoder_dim / decoder_depth / decoder_num_heads / decoder_mlp_ratio /
    decoder_norm_eps, or None for an encoder alone (usable as ``pretrained=`` only)."""
    model = {"encoder": encoder}
    if decoder is not None:
        model = {"_target_": "video_mae.models.mae.MaskedAutoencoder", **model, **decoder, "norm_pix_loss": norm_pix_loss}
    config = {
        "model": model,
        "mask": {"_target_": "video_mae.masking.TubeMasking", "ratio": 0.9},
        "data": data_config(encoder["num_frames"], encoder["img_size"]),
    }
    return {"model": state, "config": config, "converted_from": source}


def classification_checkpoint(
    state: dict, encoder: dict, mean_pooling: bool, fc_norm_eps: float | None, class_names: list[str], source: dict
) -> dict:
    num_classes = len(class_names)
    config = {
        "model": {"encoder": encoder},
        "head": {"mean_pooling": mean_pooling, "dropout": 0.0, "init_scale": 0.001, "fc_norm_eps": fc_norm_eps},
        "probe": None,
        "probe_heads": 8,
        "data": data_config(encoder["num_frames"], encoder["img_size"], num_classes),
        "eval": {
            "_target_": "video_mae.engine.evaluate.EvalSettings",
            "num_clips": 5,
            "num_crops": 3,
            "short_side": None,
            "batch_size": 2,
            "clips_per_forward": 32,
            "use_ema": False,
        },
    }
    extras = {"classifier": {"num_classes": num_classes, "pos_embed_grid": None, "class_names": class_names}}
    return {"model": state, "config": config, "extras": extras, "converted_from": source}
