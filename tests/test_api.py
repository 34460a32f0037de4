"""The Python API: one call loads any checkpoint; embed, predict, classify, reconstruct."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config

import video_mae
from video_mae.embedding_store import EmbeddingFolder
from video_mae.tasks import extract as extract_task


def demo_videos(demo_cache: Path, split: str, count: int) -> list[Path]:
    return sorted(Path(demo_cache).glob(f"demo_v2_*/{split}/*/*.mp4"))[:count]


def test_embed_matches_vmae_extract(tiny_checkpoints, demo_cache, tmp_path):
    model = video_mae.load(tiny_checkpoints["pretrain"], device="cpu")
    assert model.kind == "pretraining" and model.class_names is None
    cfg = compose_config(
        "extract", [f"checkpoint={tiny_checkpoints['pretrain']}", "num_workers=0", "progress_bar=false", "split=val", "dtype=float32"]
    )
    extract_task.run(cfg, tmp_path)
    stored, index = EmbeddingFolder(tmp_path).load()
    paths = [row["path"] for row in index]
    vectors = model.embed(paths, num_clips=int(cfg.num_clips))
    assert vectors.shape == (len(paths), 32)
    assert np.allclose(vectors.numpy(), stored, atol=1e-5)


def test_a_classifier_predicts_and_classifies_paths_and_tensors(tiny_checkpoints, demo_cache):
    model = video_mae.load(str(tiny_checkpoints["finetune"]), device="cpu")
    assert model.kind == "classifier" and len(model.class_names) == 8
    videos = demo_videos(demo_cache, "val", 3)
    probabilities = model.predict(videos)
    assert probabilities.shape == (3, 8) and torch.allclose(probabilities.sum(1), torch.ones(3), atol=1e-5)
    top = model.classify(videos[0], top_k=2)
    assert len(top) == 1 and [name for name, _ in top[0]][0] == model.class_names[int(probabilities[0].argmax())]
    clips = model.clips(videos, num_clips=1)[:, 0]  # [3, C, T, H, W], as the model takes them
    assert torch.allclose(model.predict(clips), model.predict(videos, num_clips=1), atol=1e-5)
    with pytest.raises(ValueError, match="reconstruct needs a pretraining checkpoint"):
        model.reconstruct(videos[0])


def test_reconstruct_and_the_errors_a_user_meets(tiny_checkpoints, demo_cache):
    model = video_mae.load(tiny_checkpoints["pretrain"], device="cpu")
    # The run's own masking (the demo recipe's), not VideoMAE's default tube masking at 0.9.
    assert (type(model.module.masking).__name__, model.module.masking.ratio, model.module.masking.span) == ("TubeMasking", 0.5, 0.5)
    video = demo_videos(demo_cache, "val", 1)[0]
    recon = model.reconstruct(video)
    assert recon.original.shape == recon.reconstruction.shape and recon.original.dtype == np.uint8
    with pytest.raises(ValueError, match="predict needs a fine-tuned classifier"):
        model.predict([video])
    with pytest.raises(ValueError, match=r"expected clips \[N, 3, T, H, W\]"):
        model.embed(torch.zeros(2, 8, 32, 32))


def test_a_hugging_face_folder_and_torch_hub(tiny_checkpoints, demo_cache, tmp_path):
    pytest.importorskip("transformers")
    from video_mae.convert import export_huggingface

    folder = export_huggingface(tiny_checkpoints["finetune"], tmp_path / "hf")
    ours = video_mae.load(tiny_checkpoints["finetune"], device="cpu")
    converted = video_mae.load(folder, device="cpu")
    clips = ours.clips(demo_videos(demo_cache, "val", 2), num_clips=1)[:, 0]
    assert torch.allclose(ours.predict(clips), converted.predict(clips), atol=1e-4)
    repo = Path(__file__).resolve().parents[1]
    hub = torch.hub.load(str(repo), "video_mae", str(tiny_checkpoints["pretrain"]), source="local", device="cpu")
    assert hub.kind == "pretraining"
