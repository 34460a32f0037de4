"""The model a checkpoint describes (ours or converted), built from its plain config."""

from __future__ import annotations

from torch import nn

from ..masking import Masking, RandomMasking, TubeMasking
from .classifier import VideoClassifier
from .mae import MaskedAutoencoder
from .probe import ProbeClassifier
from .vit import VisionTransformer3D

DECODER_KEYS = ("decoder_dim", "decoder_depth", "decoder_num_heads", "decoder_mlp_ratio", "decoder_norm_eps", "norm_pix_loss")


def build_encoder(config: dict, **overrides) -> VisionTransformer3D:
    settings = {k: v for k, v in config.items() if k != "_target_"}
    settings.update(overrides)
    return VisionTransformer3D(**settings)


MASKINGS = {"TubeMasking": TubeMasking, "RandomMasking": RandomMasking}


def masking_from_config(mask: dict | None) -> Masking:
    """The masking a pretraining config stored (``{"_target_": ...TubeMasking, "ratio", "span"}``);
    VideoMAE's tube masking at 0.9 for checkpoints that stored none (converted weights)."""
    if not mask:
        return TubeMasking(0.9)
    name = str(mask.get("_target_", "TubeMasking")).rsplit(".", 1)[-1]
    if name not in MASKINGS:
        raise ValueError(f"mask._target_={mask.get('_target_')!r}: not a masking this version knows ({', '.join(MASKINGS)})")
    return MASKINGS[name](**{k: v for k, v in mask.items() if k != "_target_"})


def model_from_checkpoint(checkpoint: dict) -> nn.Module:
    """An untrained model with the checkpoint's architecture (load ``checkpoint["model"]``
    into it): a classifier or probe (``extras.classifier``), a MaskedAutoencoder (decoder
    sizes in the config), or a bare encoder wrapped so that its parameter names start
    with ``encoder.``."""
    config = checkpoint["config"]
    model_cfg = config["model"]
    spec = checkpoint.get("extras", {}).get("classifier")
    if spec is not None:
        head = config.get("head", {})
        mean_pooling = bool(head.get("mean_pooling", True))
        probe = config.get("probe")
        grid = spec.get("pos_embed_grid")
        encoder = build_encoder(
            model_cfg["encoder"],
            final_norm=probe is not None or not mean_pooling,
            pos_embed_grid=list(grid) if grid else None,
            drop_path_rate=0.0,
        )
        if probe is not None:
            return ProbeClassifier(encoder, spec["num_classes"], kind=probe, num_heads=int(config.get("probe_heads", 8)))
        return VideoClassifier(encoder, spec["num_classes"], mean_pooling=mean_pooling, fc_norm_eps=head.get("fc_norm_eps"))
    encoder = build_encoder(model_cfg["encoder"], drop_path_rate=0.0)
    if "decoder_dim" in model_cfg:
        masking = masking_from_config(config.get("mask"))
        return MaskedAutoencoder(encoder, masking, **{k: model_cfg[k] for k in DECODER_KEYS if k in model_cfg})
    wrapper = nn.Module()
    wrapper.encoder = encoder
    return wrapper
