"""torch.hub entry points: ``torch.hub.load("<this repository>", "video_mae", "<checkpoint>", source="local")``.

A checkpoint of ours, a Hugging Face VideoMAE folder, or an official ``.pth`` with
``preset="vit_b"``; returns a :class:`video_mae.api.VideoModel` (``.module`` is the network).
"""

dependencies = ["torch", "timm", "einops", "hydra", "omegaconf", "av"]


def video_mae(checkpoint: str, preset: str | None = None, num_frames: int = 16, img_size: int = 224, device: str = "auto"):
    """A loaded video_mae model (see ``video_mae.load``)."""
    from video_mae.api import load

    return load(checkpoint, preset=preset, num_frames=num_frames, img_size=img_size, device=device)
