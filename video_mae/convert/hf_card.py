"""What an exported Hugging Face folder needs besides its weights: the processor config
that ``AutoImageProcessor`` (and so ``pipeline("video-classification")``) reads, and a
model card (``README.md``) that says what the model is and how it was trained.

transformers 5 builds its video processor from this file too; given a path, its pipeline
decodes with torchcodec (which needs FFmpeg's shared libraries), given decoded frames it
needs nothing more."""

from __future__ import annotations

import json

from ..constants import IMAGENET_MEAN, IMAGENET_STD

BILINEAR = 2  # PIL's code, as transformers stores `resample`


def _sizes(checkpoint: dict) -> tuple[int, int]:
    """(short side the frames are resized to, centre crop) of the checkpoint's evaluation."""
    config = checkpoint["config"]
    crop = int((config.get("data") or {}).get("crop_size") or config["model"]["encoder"]["img_size"])
    short = (config.get("eval") or {}).get("short_side") or crop
    return int(short), crop


def image_processor_config(checkpoint: dict) -> dict:
    """``preprocessor_config.json``: resize the short side, centre crop, scale to 0..1, normalise."""
    short, crop = _sizes(checkpoint)
    return {
        "image_processor_type": "VideoMAEImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": short},
        "resample": BILINEAR,
        "do_center_crop": True,
        "crop_size": {"height": crop, "width": crop},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
    }


def model_card(checkpoint: dict, hf_config: dict, metrics: dict | None = None) -> str:
    """A README.md for the folder, written from what the checkpoint records, and from the
    run's ``metrics.json`` (its multi-view evaluation) when there is one."""
    config = checkpoint["config"]
    data, enc = config.get("data") or {}, config["model"]["encoder"]
    classifier = "VideoMAEForVideoClassification" in hf_config.get("architectures", [])
    kind = "video classifier" if classifier else "masked-autoencoder pretraining model (encoder and decoder)"
    labels = hf_config.get("id2label", {})
    if data.get("sampling", "stride") == "stride":
        stride = f"every {data.get('sampling_rate', 'n')} frames"
    else:
        stride = f"by {data['sampling']} sampling"
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: " + ("video-classification" if classifier else "feature-extraction"),
        "tags: [videomae, video, video_mae]",
        "---",
        "",
        f"# VideoMAE {kind}, exported by video_mae",
        "",
        f"A ViT with joint space-time attention: {enc['embed_dim']} wide, {enc['depth']} blocks, "
        f"{enc['num_heads']} heads, {enc['patch_size']}x{enc['patch_size']} patches over "
        f"{enc['tubelet_size']} frames; input {enc['num_frames']} frames of {enc['img_size']}x{enc['img_size']} "
        f"pixels, taken {stride}, normalised with the ImageNet mean and std.",
        "",
    ]
    if classifier:
        lines += [f"Classes ({len(labels)}): " + ", ".join(labels[str(i)] for i in range(len(labels))) + ".", ""]
    origin = checkpoint.get("converted_from")
    trained = f"converted from {origin['format']} weights ({origin.get('path', '')})" if origin else "trained with video_mae"
    lines += [
        f"Weights {trained}; step {checkpoint.get('step', 'unknown')}, epoch {checkpoint.get('epoch', 'unknown')}.",
        f"Training data: {data.get('train_list') or 'the video_mae demo dataset'}.",
        "",
    ]
    if metrics:
        shown = {k: metrics[k] for k in ("top1", "top5", "mean_class_accuracy", "num_videos") if k in metrics}
        lines += ["## Evaluation", "", "From the run's `metrics.json` (`vmae-eval`'s multi-view protocol):", ""]
        lines += [f"- {key}: {value:.2f}" if isinstance(value, float) else f"- {key}: {value}" for key, value in shown.items()]
        lines += [""]
    lines += [
        "## Use",
        "",
        "```python",
    ]
    if classifier:
        lines += [
            "from transformers import pipeline",
            'classify = pipeline("video-classification", model="<this folder>")',
            'classify("clip.mp4")  # [{"label": ..., "score": ...}, ...]; transformers 5 decodes with torchcodec',
            "classify(frames)      # or frames you decoded: a uint8 array [T, H, W, 3]",
        ]
    else:
        lines += ["from transformers import VideoMAEForPreTraining", 'model = VideoMAEForPreTraining.from_pretrained("<this folder>")']
    lines += [
        "```",
        "",
        "The pipeline samples its own frames from what it is given; video_mae's own evaluation "
        "(`vmae-eval`) averages clips taken at the training stride, which is what its reported "
        "accuracies use.",
        "",
        "## Training config",
        "",
        "```json",
        json.dumps({k: config[k] for k in ("model", "data", "optim") if k in config}, indent=1, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)
