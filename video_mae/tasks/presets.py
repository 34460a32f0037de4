"""The model presets (``conf/model/<name>.yaml``) as plain dicts, for code outside Hydra apps
(the Python API, ``vmae-bench``, ``vmae-convert``)."""

from __future__ import annotations

from importlib import resources

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

PRESETS = ("vit_tiny", "vit_s", "vit_b", "vit_l", "vit_h", "vit_g")


def model_preset(name: str, asked_as: str) -> dict:
    """The preset ``name`` (interpolations such as ``${data.crop_size}`` left as written).
    ``asked_as`` names it in the error, the way the user gave it (``--model x``, ``preset='x'``).

    Composed by Hydra from the preset alone, so that its defaults (the shared ViT base)
    apply and nothing of a task's primary config (recipes, experiments) does."""
    if not resources.files("video_mae.conf").joinpath("model", f"{name}.yaml").is_file():
        raise ValueError(f"{asked_as}: no such preset ({', '.join(PRESETS)})")
    overrides = [f"+model={name}"]
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app: its search path holds the same configs
        cfg = compose(overrides=overrides)
    else:
        with initialize_config_module("video_mae.conf", version_base=None):
            cfg = compose(overrides=overrides)
    return OmegaConf.to_container(cfg.model, resolve=False)
