"""The checkpoint dict of engine.state on its own: the paths a full run does not reach
(older checkpoints without per-rank RNG streams or newer counters, a changed train.fsdp)."""

from __future__ import annotations

import pytest
import torch

from video_mae.distributed import DistContext
from video_mae.engine.state import Position, TrainingState


class Extra:
    def __init__(self) -> None:
        self.value = 0

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"]


def make_state(seed: int = 0) -> TrainingState:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    return TrainingState(model, optimizer, None, generator, {"extra": Extra()}, torch.device("cpu"), DistContext(), fsdp=False)


def test_round_trip_restores_weights_position_rng_and_extras():
    source = make_state(0)
    source.model(torch.ones(1, 3)).sum().backward()
    source.optimizer.step()
    source.extras["extra"].value = 7
    position = Position(epoch=2, batches_done=4, step=9, counters={"nonfinite_skipped": 1, "bad_videos": 3})
    saved = source.state_dict(position, {"train": {"epochs": 3}})
    expected_draw = torch.rand(3, generator=source.generator)

    target, restored = make_state(1), Position()
    target.load_state_dict(saved, restored)
    assert restored == position
    assert all(torch.equal(a, b) for a, b in zip(source.model.state_dict().values(), target.model.state_dict().values()))
    assert target.optimizer.state_dict()["state"][0]["step"] == 1
    assert target.extras["extra"].value == 7
    assert torch.equal(torch.rand(3, generator=target.generator), expected_draw)


def test_an_older_checkpoint_resumes_with_the_written_streams_and_default_counters():
    saved = make_state(0).state_dict(Position(step=5, counters={"bad_videos": 2}), {})
    del saved["rng_per_rank"]
    saved["rng"]["generator"] = torch.Generator().manual_seed(123).get_state()
    target, restored = make_state(1), Position()
    target.load_state_dict(saved, restored)
    assert restored.counters == {"nonfinite_skipped": 0, "bad_videos": 2}
    assert torch.equal(torch.rand(3, generator=target.generator), torch.rand(3, generator=torch.Generator().manual_seed(123)))


def test_a_changed_fsdp_setting_is_refused():
    saved = make_state(0).state_dict(Position(), {})
    saved["fsdp"] = True
    with pytest.raises(ValueError, match="train.fsdp=True .*resume with the same setting"):
        make_state(1).load_state_dict(saved, Position())
