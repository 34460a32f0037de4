"""Loading a pretraining checkpoint's encoder into a classifier or probe."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .key_check import state_dict_problems
from .patch_embed import resize_tubelet_kernel

# Known parts that are not the encoder: a pretraining model's decoder side, and a
# fine-tuned model's head (when starting a new fine-tuning from a fine-tuned encoder).
NOT_ENCODER = ("decoder.", "encoder_to_decoder.", "mask_token", "fc_norm.", "head.")


class PretrainedMismatch(ValueError):
    """The pretrained weights do not fit the model; the message lists the keys."""


@dataclass
class LoadReport:
    """What happened to each key of the pretrained state.

    loaded: encoder keys copied into the model.
    adapted: keys changed on the way (resampled tubelet kernel).
    ignored: keys of parts other than the encoder (decoder, mask token, an earlier
             head), and the encoder's final norm when the model pools first and
             normalises after (fc_norm).
    missing: model keys the checkpoint did not provide (only the head may be).
    """

    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "loaded": len(self.loaded),
            "adapted": self.adapted,
            "ignored": sorted({key.split(".")[0] if key.startswith("decoder.") else key for key in self.ignored}),
            "missing": self.missing,
        }


def load_encoder_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """Copies the ``encoder.*`` entries of a pretraining state dict into ``model.encoder``.

    Anything else the model lacks (fc_norm, head, probe layers) is reported as
    missing; any checkpoint key that neither fits the encoder nor is a known
    non-encoder part raises :class:`PretrainedMismatch` with the list, as do
    shape mismatches that cannot be adapted.
    """
    encoder: nn.Module = model.encoder
    report = LoadReport()
    wanted = encoder.state_dict()
    encoder_state: dict[str, torch.Tensor] = {}
    unknown: dict[str, torch.Tensor] = {}  # neither encoder nor a known other part
    for key, value in state.items():
        if key.startswith(NOT_ENCODER):
            report.ignored.append(key)
        elif key.startswith("encoder."):
            encoder_state[key[len("encoder.") :]] = value
        else:
            unknown[key] = value
    if "norm.weight" in encoder_state and "norm.weight" not in wanted:
        for key in ("norm.weight", "norm.bias"):
            encoder_state.pop(key, None)
            report.ignored.append(f"encoder.{key}")
    kernel = "patch_embed.proj.weight"
    if kernel in encoder_state and kernel in wanted and encoder_state[kernel].shape != wanted[kernel].shape:
        old, new = encoder_state[kernel].shape, wanted[kernel].shape
        if old[:2] != new[:2] or old[3:] != new[3:]:
            raise PretrainedMismatch(
                f"patch embedding {list(old)} cannot become {list(new)}: width, channels and patch size must match pretraining"
            )
        encoder_state[kernel] = resize_tubelet_kernel(encoder_state[kernel], new[2])
        report.adapted.append(f"encoder.{kernel} (tubelet {old[2]} -> {new[2]})")
    problems = state_dict_problems(
        unknown | {f"encoder.{key}": value for key, value in encoder_state.items()},
        {f"encoder.{key}": value for key, value in wanted.items()},
    )
    if problems:
        raise PretrainedMismatch("the pretrained weights do not fit this model (is model= the pretraining's size?): " + "; ".join(problems))
    encoder.load_state_dict(encoder_state, strict=True)
    report.loaded = [f"encoder.{key}" for key in encoder_state]
    report.missing = [key for key in model.state_dict() if not key.startswith("encoder.")]
    return report
