"""The Python API: load a model in one call, then embed, classify or reconstruct videos.

    import video_mae
    model = video_mae.load("runs/finetune/pretrained/checkpoints/best.pt")
    vectors = model.embed(["a.mp4", "b.mp4"])        # [2, D], L2-normalised
    model.classify("a.mp4", top_k=3)                 # [[("moving_right", 0.91), ...]]

``load`` takes a checkpoint this project wrote (pretraining, fine-tuning, probe), a Hugging
Face VideoMAE folder, or an official VideoMAE v1/V2 ``.pth`` (with ``preset=`` naming its
architecture). Videos are paths (decoded and cut into clips exactly as ``vmae-eval`` and
``vmae-extract`` do) or tensors of clips ready for the model, [N, C, T, H, W], normalised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import CheckpointError, load_checkpoint
from .data.lists import VideoRecord
from .data.loader import evaluation_dataset
from .data.settings import DataSettings, data_settings_from_config
from .data.transforms import EvalClipTransform
from .engine.device import autocast, resolve_device, resolve_precision
from .engine.embed import clip_features
from .models.classifier import VideoClassifier
from .models.from_checkpoint import model_from_checkpoint
from .models.key_check import load_fitting
from .models.mae import MaskedAutoencoder
from .models.probe import ProbeClassifier
from .tasks.presets import model_preset

Videos = str | Path | torch.Tensor | Sequence[str | Path]


@dataclass
class VideoModel:
    """A loaded model with what it needs to read videos the way it was trained.

    module: the network (eval mode). data: its clip settings (frames, stride, crop,
    normalisation). class_names: for classifiers. kind: "classifier", "pretraining" or
    "encoder". num_clips: clips per video averaged by ``embed`` and ``classify``."""

    module: nn.Module
    data: DataSettings
    class_names: list[str] | None
    kind: str
    device: torch.device
    precision: str
    num_clips: int = 2
    short_side: int | None = None

    def clips(self, videos: Videos, num_clips: int | None = None) -> torch.Tensor:
        """Normalised clips [N, V, C, T, H, W]: ``num_clips`` evenly spread centre crops per
        video path; a tensor of clips [N, C, T, H, W] is returned as [N, 1, C, T, H, W]."""
        if isinstance(videos, torch.Tensor):
            if videos.dim() != 5 or videos.shape[1] != 3:
                raise ValueError(f"expected clips [N, 3, T, H, W], got a tensor of shape {list(videos.shape)}")
            return videos.float().unsqueeze(1)
        paths = [videos] if isinstance(videos, (str, Path)) else list(videos)
        records = [VideoRecord(row=i, path=str(p), label=0) for i, p in enumerate(paths)]
        transform = EvalClipTransform(self.data.crop_size, self.data.mean, self.data.std, self.short_side)
        dataset = evaluation_dataset(records, self.data, transform, num_clips or self.num_clips, report_unreadable=False)
        return torch.stack([dataset[i]["video"] for i in range(len(records))])

    @torch.no_grad()
    def _per_clip(self, fn: Callable[[torch.Tensor], torch.Tensor], videos: Videos, num_clips: int | None) -> torch.Tensor:
        views = self.clips(videos, num_clips)
        flat = views.flatten(0, 1).to(self.device)
        with autocast(self.device, self.precision):
            out = fn(flat).float()
        return out.reshape(views.shape[0], views.shape[1], *out.shape[1:]).cpu()

    def embed(self, videos: Videos, num_clips: int | None = None) -> torch.Tensor:
        """One vector per video [N, D], as ``vmae-extract`` writes them: each clip's pooled
        features L2-normalised, averaged over the video's clips, normalised again."""
        features, _ = clip_features(self.module)
        per_clip = F.normalize(self._per_clip(features, videos, num_clips), dim=-1)
        return F.normalize(per_clip.mean(dim=1), dim=-1)

    def predict(self, videos: Videos, num_clips: int | None = None) -> torch.Tensor:
        """Class probabilities [N, classes], softmax averaged over each video's clips."""
        if self.kind != "classifier":
            raise ValueError(f"predict needs a fine-tuned classifier; this is a {self.kind} model (use embed)")
        return self._per_clip(self.module, videos, num_clips).softmax(dim=-1).mean(dim=1)

    def classify(self, videos: Videos, top_k: int = 5, num_clips: int | None = None) -> list[list[tuple[str, float]]]:
        """Per video, the ``top_k`` (class name, probability) pairs, most likely first."""
        probabilities = self.predict(videos, num_clips)
        names = self.class_names or [str(i) for i in range(probabilities.shape[1])]
        scores, ids = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        return [[(names[i], float(s)) for i, s in zip(row_ids.tolist(), row_scores)] for row_ids, row_scores in zip(ids, scores)]

    def reconstruct(self, video: str | Path | torch.Tensor, seed: int = 0):
        """The masked autoencoder's reconstruction of one video's centre clip (a
        :class:`~video_mae.visualize.Reconstruction`; ``save_png(reconstruction_grid(r), ...)``
        draws it)."""
        if self.kind != "pretraining":
            raise ValueError(f"reconstruct needs a pretraining checkpoint (with its decoder); this is a {self.kind} model")
        from .visualize import reconstruct  # keeps `import video_mae` light: only reconstruct() needs it

        clip = self.clips(video, num_clips=1)[0, 0]
        return reconstruct(self.module.cpu(), clip, seed=seed)


def _read_checkpoint(source: Path, preset: str | None, num_frames: int, img_size: int) -> dict:
    from .convert import convert_checkpoint  # keeps `import video_mae` light: only foreign checkpoints need it

    if source.is_dir():
        return convert_checkpoint(source)
    if preset is not None:
        return convert_checkpoint(source, model_preset(preset, f"preset={preset!r}"), num_frames=num_frames, img_size=img_size)
    try:
        return load_checkpoint(source)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; for an official VideoMAE .pth give its architecture: load(path, preset='vit_b')") from None


def load(
    source: str | Path,
    preset: str | None = None,
    num_frames: int = 16,
    img_size: int = 224,
    device: str = "auto",
    precision: str = "auto",
) -> VideoModel:
    """A :class:`VideoModel` from a checkpoint of ours, a Hugging Face VideoMAE folder, or
    an official ``.pth`` (``preset``: its architecture, e.g. "vit_b"; ``num_frames`` /
    ``img_size``: its clip shape). ``device``/``precision`` as in the configs ("auto")."""
    source = Path(source).expanduser()
    state = _read_checkpoint(source, preset, num_frames, img_size)
    module = model_from_checkpoint(state)  # with the run's own masking, for reconstruct
    load_fitting(module, state["model"], str(source))
    data = data_settings_from_config(state["config"]["data"])
    spec = state.get("extras", {}).get("classifier")
    if isinstance(module, (VideoClassifier, ProbeClassifier)):
        kind = "classifier"
    elif isinstance(module, MaskedAutoencoder):
        kind = "pretraining"
    else:
        kind = "encoder"
    names = (spec or {}).get("class_names") or None
    resolved = resolve_device(device)
    module = module.to(resolved).eval()
    width = int(module.encoder.embed_dim)
    evaluation = state["config"].get("eval") or {}
    return VideoModel(
        module, data, list(names) if names else None, kind, resolved, resolve_precision(precision, resolved, width),
        num_clips=int(evaluation.get("num_clips") or 2), short_side=evaluation.get("short_side"),
    )  # fmt: skip
