"""The model a (converted) checkpoint describes, built from its plain config."""

from __future__ import annotations

from torch import nn

from ..masking import TubeMasking
from ..models.classifier import VideoClassifier
from ..models.mae import MaskedAutoencoder
from ..models.vit import VisionTransformer3D


def build_encoder(config: dict) -> VisionTransformer3D:
    return VisionTransformer3D(**{k: v for k, v in config.items() if k != "_target_"})


def build_model_for(checkpoint: dict) -> nn.Module:
    """MaskedAutoencoder, VideoClassifier, or a bare encoder wrapped so that its
    parameter names start with ``encoder.`` (as in the checkpoint)."""
    config = checkpoint["config"]
    model_cfg = config["model"]
    encoder = build_encoder(model_cfg["encoder"])
    spec = checkpoint.get("extras", {}).get("classifier")
    if spec is not None:
        head = config.get("head", {})
        return VideoClassifier(
            encoder,
            spec["num_classes"],
            mean_pooling=bool(head.get("mean_pooling", True)),
            fc_norm_eps=head.get("fc_norm_eps"),
        )
    if "decoder_dim" in model_cfg:
        keys = ("decoder_dim", "decoder_depth", "decoder_num_heads", "decoder_mlp_ratio", "decoder_norm_eps", "norm_pix_loss")
        return MaskedAutoencoder(encoder, TubeMasking(0.9), **{k: model_cfg[k] for k in keys if k in model_cfg})
    wrapper = nn.Module()
    wrapper.encoder = encoder
    return wrapper
