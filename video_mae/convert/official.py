"""Official VideoMAE (v1) and VideoMAE V2 ``.pth`` checkpoints -> our checkpoints.

Their parameter names are ours (our modules follow the official layout: fused
``qkv`` with separate ``q_bias``/``v_bias``, ``norm1``/``norm2``, ``mlp.fc1``/``fc2``),
so conversion is about finding the weights (under ``model`` or ``module``, with
``module.``, ``backbone.`` or ``encoder.`` prefixes), telling the pretraining and
fine-tuned layouts apart, and checking every shape against the architecture of a
``model=`` preset. The clip length and crop size are not stored in the files and
are given by the caller (VideoMAE: 16 frames, 224 px).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .hf import ConversionError
from .ours import classification_checkpoint, encoder_config, pretraining_checkpoint
from .safe_load import load_foreign_checkpoint


def _weights(raw: dict, path: str) -> dict[str, torch.Tensor]:
    """The weights of an official file: under ``model`` / ``module`` / ``state_dict``
    (training checkpoints, beside ``args``, ``optimizer``, ...) or at the top level,
    without a ``module.`` (DDP) or ``backbone.`` prefix shared by every key."""
    for key in ("model", "module", "state_dict"):
        if isinstance(raw.get(key), dict):
            weights = raw[key]
            others = sorted(k for k, v in weights.items() if not isinstance(v, torch.Tensor))
            if others:
                raise ConversionError(f"{path}: non-tensor entries under '{key}': {', '.join(others[:8])}")
            break
    else:
        weights = {k: v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not weights:
        raise ConversionError(f"{path}: no weights found (looked under 'model', 'module', 'state_dict' and the top level)")
    for prefix in ("module.", "backbone."):
        if all(k.startswith(prefix) for k in weights):
            weights = {k[len(prefix) :]: v for k, v in weights.items()}
    return weights


def official_to_ours(path: str | Path, preset: dict, num_frames: int = 16, img_size: int = 224) -> dict:
    """``preset``: a model config as in ``conf/model/*.yaml`` (an ``encoder`` section and
    decoder sizes) giving the architecture; shapes in the file must agree with it."""
    path = str(path)
    weights = _weights(load_foreign_checkpoint(path), path)
    enc_preset = preset["encoder"]
    pretraining = any(k.startswith(("decoder.", "encoder_to_decoder.")) or k == "mask_token" for k in weights)
    if pretraining:
        encoder_keys = {k[len("encoder.") :]: v for k, v in weights.items() if k.startswith("encoder.")}
    else:  # a fine-tuned model or a bare encoder: the encoder at the top level (or under "encoder.")
        weights = {k.removeprefix("encoder."): v for k, v in weights.items()}
        encoder_keys = {k: v for k, v in weights.items() if not k.startswith(("fc_norm.", "head."))}
    kernel = encoder_keys.get("patch_embed.proj.weight")
    if kernel is None:
        raise ConversionError(f"{path}: no patch embedding (patch_embed.proj.weight); is this a VideoMAE checkpoint?")
    depth = 1 + max(int(k.split(".")[1]) for k in encoder_keys if k.startswith("blocks."))
    found = {"embed_dim": kernel.shape[0], "depth": depth, "tubelet_size": kernel.shape[2], "patch_size": kernel.shape[3]}
    expected = {key: int(enc_preset[key]) for key in found}
    if found != expected:
        differ = ", ".join(f"{k}: file {found[k]} vs preset {expected[k]}" for k in found if found[k] != expected[k])
        raise ConversionError(f"{path}: the weights do not match the model= preset ({differ})")
    mean_pooling = "fc_norm.weight" in weights
    has_head = "head.weight" in weights
    final_norm = "norm.weight" in encoder_keys
    encoder = encoder_config(
        img_size=img_size,
        patch_size=found["patch_size"],
        num_frames=num_frames,
        tubelet_size=found["tubelet_size"],
        in_chans=kernel.shape[1],
        embed_dim=found["embed_dim"],
        depth=depth,
        num_heads=int(enc_preset["num_heads"]),
        mlp_ratio=float(enc_preset.get("mlp_ratio", 4.0)),
        qkv_bias="blocks.0.attn.q_bias" in encoder_keys,
        norm_eps=float(enc_preset.get("norm_eps", 1e-6)),
        final_norm=final_norm,
    )
    source = {
        "format": "videomae-official",
        "path": path,
        "architecture": "pretraining" if pretraining else "classification" if has_head else "encoder",
    }
    if pretraining:
        state = dict(weights)
        decoder_norm = state.get("decoder.norm.weight")
        decoder = {
            "decoder_dim": int(decoder_norm.shape[0]) if decoder_norm is not None else int(preset["decoder_dim"]),
            "decoder_depth": 1 + max(int(k.split(".")[2]) for k in state if k.startswith("decoder.blocks.")),
            "decoder_num_heads": int(preset["decoder_num_heads"]),
        }
        checkpoint = pretraining_checkpoint(state, encoder, decoder, bool(preset.get("norm_pix_loss", True)), source)
    elif has_head:
        state = {(k if k.startswith(("fc_norm.", "head.")) else f"encoder.{k}"): v for k, v in weights.items()}
        names = [str(i) for i in range(weights["head.weight"].shape[0])]
        checkpoint = classification_checkpoint(state, encoder, mean_pooling, None, names, source)
    else:
        state = {f"encoder.{k}": v for k, v in weights.items()}
        checkpoint = pretraining_checkpoint(state, encoder, None, True, source)
    _check_complete(checkpoint, path)
    return checkpoint


def _check_complete(checkpoint: dict, path: str) -> None:
    """Builds the model the checkpoint describes and loads the weights strictly:
    leftover or missing keys, or wrong shapes, are an error listing them."""
    from ..models.from_checkpoint import model_from_checkpoint  # the models (and timm) only for the check after the key mapping
    from ..models.key_check import state_dict_problems

    model = model_from_checkpoint(checkpoint)
    problems = state_dict_problems(checkpoint["model"], model.state_dict())
    if problems:
        raise ConversionError(f"{path}: " + "; ".join(problems))
