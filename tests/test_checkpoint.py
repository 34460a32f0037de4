import pickle

import pytest
import torch

import video_mae.checkpoint as checkpoint_module
from video_mae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_with_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "step": 3, "config": {"a": [1, 2], "b": None}}
    save_checkpoint(state, tmp_path / "ck" / "last.pt")
    loaded = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0)) and loaded["config"] == state["config"]
    assert load_checkpoint(tmp_path / "ck" / "last.pt")["step"] == 3


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {}, "step": 1}, path)
    real_save = torch.save

    def half_written(obj, handle):
        handle.write(b"partial bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", half_written)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint is intact"):
        save_checkpoint({"model": {}, "step": 2}, path)
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


class Sneaky:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        pickle.dump({"model": Sneaky()}, handle, protocol=2)
    with pytest.raises(CheckpointError, match="not a readable video_mae checkpoint"):
        load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def test_not_a_checkpoint(tmp_path):
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no 'model' entry"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
