import torch

from video_mae.models.key_check import state_dict_problems


def test_fitting_state_dicts_have_no_problems():
    wanted = {"a": torch.zeros(2), "b": torch.zeros(3, 4)}
    assert state_dict_problems({"a": torch.ones(2), "b": torch.ones(3, 4)}, wanted) == []


def test_each_kind_of_difference_is_named_with_its_keys():
    wanted = {"a": torch.zeros(2), "b": torch.zeros(3, 4), "c": torch.zeros(1)}
    state = {"a": torch.zeros(2), "b": torch.zeros(4, 3), "extra": torch.zeros(1)}
    assert state_dict_problems(state, wanted) == [
        "unexpected keys: extra",
        "missing keys: c",
        "shape mismatches (checkpoint vs model): b: [4, 3] vs [3, 4]",
    ]


def test_long_lists_are_cut_and_say_how_many_more():
    wanted = {f"k{i:02d}": torch.zeros(1) for i in range(20)}
    (problem,) = state_dict_problems({}, wanted)
    assert problem.startswith("missing keys: k00, k01") and problem.endswith("k11 (and 8 more)")
