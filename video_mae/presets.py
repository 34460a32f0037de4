"""The model presets (``conf/model/<name>.yaml``) as plain dicts, for code outside Hydra."""

from __future__ import annotations

from importlib import resources

PRESETS = ("vit_tiny", "vit_s", "vit_b", "vit_l", "vit_h", "vit_g")


def model_preset(name: str, asked_as: str) -> dict:
    """The preset ``name`` (interpolations left as written). ``asked_as`` names it in the
    error, the way the user gave it (``--model x``, ``preset='x'``)."""
    from omegaconf import OmegaConf

    file = resources.files("video_mae.conf").joinpath("model", f"{name}.yaml")
    if not file.is_file():
        raise ValueError(f"{asked_as}: no such preset ({', '.join(PRESETS)})")
    return OmegaConf.to_container(OmegaConf.create(file.read_text(encoding="utf-8")), resolve=False)
