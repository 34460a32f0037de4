"""Embedding extraction and retrieval, end to end on the tiny demo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, tiny_overrides

import video_mae.embedding_store as store_module
from video_mae.cli import retrieve
from video_mae.embedding_store import EmbeddingFolder
from video_mae.engine.search import ExactSearch, faiss_available, make_index, retrieval_metrics
from video_mae.tasks import extract as extract_task
from video_mae.tasks import pretrain as pretrain_task


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, demo_cache) -> Path:
    run_dir = tmp_path_factory.mktemp("emb_pretrain")
    pretrain_task.run(compose_config("pretrain", tiny_overrides(demo_cache) + ["train.epochs=1", "recon_every_epochs=0"]), run_dir)
    return run_dir / "checkpoints" / "last.pt"


def extract(checkpoint: Path, out: Path, *extra: str) -> dict:
    cfg = compose_config("extract", [f"checkpoint={checkpoint}", "num_workers=0", "progress_bar=false", *extra])
    return extract_task.run(cfg, out)


def test_extraction_writes_normalised_shards_index_and_meta(checkpoint, tmp_path):
    summary = extract(checkpoint, tmp_path, "split=train", "shard_size=5", "per_clip=true", "num_clips=3", "dtype=float32")
    assert summary["videos"] == 16 and summary["failed"] == 0
    vectors, index = EmbeddingFolder(tmp_path).load()
    assert vectors.shape == (16, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert [int(r["row"]) for r in index] == list(range(16))
    assert sorted({int(r["shard"]) for r in index}) == [0, 1, 2, 3]
    assert len(index[0]["clips"].split(";")) == 3
    start, end = map(float, index[0]["clips"].split(";")[0].split("-"))
    assert 0 <= start < end
    clips = np.load(tmp_path / "clip_embeddings_00000.npy")
    assert clips.shape == (5, 3, 32) and np.allclose(np.linalg.norm(clips, axis=2), 1.0, atol=1e-5)
    # The video vector is the normalised mean of its normalised clip vectors.
    mean = clips[0].mean(axis=0)
    assert np.allclose(vectors[0], mean / np.linalg.norm(mean), atol=1e-5)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert {"checkpoint_sha256", "model", "pooling", "num_frames", "dim", "normalisation"} <= meta.keys()
    assert meta["pooling"] == "mean+norm" and meta["dim"] == 32


def test_the_same_video_twice_gives_the_same_vector(checkpoint, tmp_path, demo_cache):
    train = next(Path(demo_cache).glob("demo_v2_*/train.txt"))
    first = train.read_text().splitlines()[0]
    path = Path(train.parent / first.rsplit(" ", 1)[0])
    data_list = tmp_path / "twice.txt"
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    data_list.write_text(f"{path} 0\n{tmp_path / 'broken.mp4'} 1\n{path} 0\n")
    summary = extract(checkpoint, tmp_path / "out", f"list={data_list}")
    vectors, index = EmbeddingFolder(tmp_path / "out").load()
    assert [int(r["row"]) for r in index] == [0, 2] and summary["failed"] == 1
    assert np.array_equal(vectors[0], vectors[1])
    failed = list(csv.DictReader((tmp_path / "out" / "failed.csv").open()))
    assert failed[0]["row"] == "1" and failed[0]["reason"].startswith("cannot open")


def test_an_interrupted_extraction_resumes_to_the_same_result(checkpoint, tmp_path, monkeypatch):
    extract(checkpoint, tmp_path / "straight", "split=train", "shard_size=4")
    real = store_module.EmbeddingFolder.write_shard
    written = []

    def write_then_die(self, shard, *args):
        real(self, shard, *args)
        written.append(shard)
        if len(written) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(store_module.EmbeddingFolder, "write_shard", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        extract(checkpoint, tmp_path / "resumed", "split=train", "shard_size=4")
    monkeypatch.setattr(store_module.EmbeddingFolder, "write_shard", real)
    redone = []
    monkeypatch.setattr(store_module.EmbeddingFolder, "write_shard", lambda self, shard, *a: (redone.append(shard), real(self, shard, *a)))
    extract(checkpoint, tmp_path / "resumed", "split=train", "shard_size=4")
    assert redone == [2, 3]  # the finished shards were not redone
    for name in ["index.csv", "failed.csv"] + [f"embeddings_{i:05d}.npy" for i in range(4)]:
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes(), name


def test_a_different_extraction_into_the_same_folder_is_refused(checkpoint, tmp_path):
    extract(checkpoint, tmp_path, "split=val", "num_clips=2")
    with pytest.raises(ValueError, match="num_clips"):
        extract(checkpoint, tmp_path, "split=val", "num_clips=3")


def random_unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_chunked_exact_search_equals_brute_force():
    gallery, queries = random_unit(300, 16, 0), random_unit(25, 16, 1)
    scores, indices = ExactSearch(gallery, query_chunk=7, gallery_chunk=50).search(queries, 10)
    brute = np.argsort(-(queries @ gallery.T), axis=1, kind="stable")[:, :10]
    assert np.array_equal(indices, brute)
    assert np.allclose(scores, np.take_along_axis(queries @ gallery.T, brute, axis=1), atol=1e-6)


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed")
def test_faiss_and_exact_search_return_the_same_neighbours():
    gallery, queries = random_unit(2000, 64, 2), random_unit(100, 64, 3)
    f_scores, f_indices = make_index(gallery, "faiss").search(queries, 10)
    e_scores, e_indices = make_index(gallery, "exact").search(queries, 10)
    assert np.array_equal(f_indices, e_indices)
    assert np.allclose(f_scores, e_scores, atol=1e-5)


def test_retrieval_metrics_on_a_known_ranking():
    # One-dimensional "embeddings": similarity is the product, so the ranking is by gallery value.
    gallery = np.array([[1.0], [0.5], [-0.5], [-1.0]], np.float32)
    gallery_labels = [0, 1, 0, 1]
    queries = np.array([[1.0], [-1.0]], np.float32)
    metrics = retrieval_metrics(queries, [1, 5], gallery, gallery_labels, ks=(1, 2))
    # Query 0 ranks labels 0,1,0,1: first hit at rank 2 (AP = (1/2 + 2/4) / 2 = 0.5); query 1 has no match.
    assert metrics["recall@1"] == 0.0 and metrics["recall@2"] == 100.0
    assert metrics["mAP"] == pytest.approx(50.0)
    assert metrics["queries"] == 1 and metrics["queries_without_match"] == 1


def test_vmae_retrieve_with_folders_lists_and_videos(checkpoint, tmp_path, capsys, demo_cache):
    extract(checkpoint, tmp_path / "train", "split=train")
    extract(checkpoint, tmp_path / "val", "split=val")
    code = retrieve([str(tmp_path / "train"), "--queries", str(tmp_path / "val"), "--eval", "--top-k", "3",
                     "--out", str(tmp_path / "results.csv"), "--metrics", str(tmp_path / "metrics.json")])  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 8 * 3 and [r["rank"] for r in rows[:3]] == ["1", "2", "3"]
    assert float(rows[0]["score"]) >= float(rows[1]["score"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"recall@1", "recall@5", "recall@10", "mAP"} <= metrics.keys() and metrics["queries"] == 8
    # The same queries as a data list are embedded like the gallery and give the same neighbours.
    val_list = next(Path(demo_cache).glob("demo_v2_*/val.txt"))
    assert retrieve([str(tmp_path / "train"), "--list", str(val_list), "--top-k", "3", "--out", str(tmp_path / "again.csv")]) == 0
    again = list(csv.DictReader((tmp_path / "again.csv").open()))
    assert [r["gallery_row"] for r in again] == [r["gallery_row"] for r in rows]
    video = rows[0]["query_path"]
    assert retrieve([str(tmp_path / "train"), "--videos", video, "--top-k", "2", "--out", str(tmp_path / "one.json")]) == 0
    one = json.loads((tmp_path / "one.json").read_text())
    assert [r["gallery_row"] for r in one] == [r["gallery_row"] for r in rows[:2]]
    assert retrieve([str(tmp_path / "nothing"), "--queries", str(tmp_path / "val")]) == 2
    assert "no index.csv" in capsys.readouterr().err


def test_python_api_embeds_inside_user_code(checkpoint):
    from video_mae.checkpoint import load_checkpoint
    from video_mae.engine.embed import extract_embeddings
    from video_mae.models.from_checkpoint import model_from_checkpoint

    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(state)
    model.load_state_dict(state["model"])
    clips = torch.randn(3, 2, 3, 8, 32, 32)  # 3 videos x 2 clips
    result = extract_embeddings(model, [{"video": clips, "row": torch.tensor([5, 6, 7])}])
    assert result.rows == [5, 6, 7] and result.videos.shape == (3, 32) and result.clips.shape == (3, 2, 32)
    assert torch.allclose(result.videos.norm(dim=1), torch.ones(3), atol=1e-5)
