import pytest
import torch

from video_mae.masking import RandomMasking, TubeMasking

GRID = (8, 7, 7)  # 16 frames / tubelet 2, 112 px / patch 16


def check_partition(mask, num_tokens):
    ids = torch.cat([mask.ids_keep, mask.ids_mask], dim=1)
    assert torch.equal(ids.sort(dim=1).values, torch.arange(num_tokens).expand_as(ids))
    assert torch.equal(mask.ids_keep, mask.ids_keep.sort(dim=1).values)
    assert torch.equal(mask.ids_mask, mask.ids_mask.sort(dim=1).values)
    assert torch.equal(mask.mask.gather(1, mask.ids_mask), torch.ones_like(mask.ids_mask, dtype=torch.bool))
    assert not mask.mask.gather(1, mask.ids_keep).any()


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9])
def test_tube_mask_is_shared_by_every_time_slot(ratio):
    mask = TubeMasking(ratio)(6, GRID, generator=torch.Generator().manual_seed(1))
    per_slot = mask.mask.reshape(6, GRID[0], GRID[1] * GRID[2])
    assert torch.equal(per_slot, per_slot[:, :1].expand_as(per_slot))
    masked_per_slot = int(ratio * GRID[1] * GRID[2])
    assert (per_slot.sum(-1) == masked_per_slot).all()
    check_partition(mask, 8 * 49)
    # Samples get different masks.
    assert not torch.equal(per_slot[0, 0], per_slot[1, 0])


@pytest.mark.parametrize(
    "masking", [TubeMasking(0.9), RandomMasking(0.9), RandomMasking(0.75), TubeMasking(0.5, span=0.5), RandomMasking(0.75, span=0.25)]
)
def test_every_sample_keeps_exactly_the_same_number_of_tokens(masking):
    mask = masking(16, GRID, generator=torch.Generator().manual_seed(0))
    visible = masking.num_visible(GRID)
    assert mask.ids_keep.shape == (16, visible)
    assert ((~mask.mask).sum(1) == visible).all()
    check_partition(mask, 8 * 49)


def test_tube_counts_match_videomae():
    # ViT-B, 16x224, tubelet 2: 8 slots of 14x14; int(0.9 * 196) = 176 masked per slot.
    assert TubeMasking(0.9).num_visible((8, 14, 14)) == 8 * 20
    assert RandomMasking(0.9).num_visible((8, 14, 14)) == 1568 - int(0.9 * 1568)


def test_random_masking_differs_between_time_slots():
    mask = RandomMasking(0.5)(1, GRID, generator=torch.Generator().manual_seed(0))
    per_slot = mask.mask.reshape(GRID[0], -1)
    assert not all(torch.equal(per_slot[0], per_slot[t]) for t in range(1, GRID[0]))


def test_masks_follow_the_generator_seed():
    a = TubeMasking(0.9)(4, GRID, generator=torch.Generator().manual_seed(7))
    b = TubeMasking(0.9)(4, GRID, generator=torch.Generator().manual_seed(7))
    c = TubeMasking(0.9)(4, GRID, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.mask, b.mask)
    assert not torch.equal(a.mask, c.mask)


def test_ids_restore_puts_tokens_back():
    mask = RandomMasking(0.75)(3, GRID, generator=torch.Generator().manual_seed(0))
    order = torch.cat([mask.ids_keep, mask.ids_mask], dim=1)
    assert torch.equal(order.gather(1, mask.ids_restore), torch.arange(8 * 49).expand(3, -1))


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, -0.1])
@pytest.mark.parametrize("cls", [TubeMasking, RandomMasking])
def test_invalid_ratio_names_the_key(cls, ratio):
    with pytest.raises(ValueError, match="mask.ratio"):
        cls(ratio)


def test_ratio_that_masks_nothing_names_the_key():
    with pytest.raises(ValueError, match=r"mask.ratio=0.01 masks 0 of the 4 tokens"):
        TubeMasking(0.01)(1, (2, 2, 2))


def test_span_hides_one_end_of_the_clip_and_tubes_in_the_rest():
    masking = TubeMasking(ratio=0.5, span=0.25)  # 8 slots: 2 hidden whole
    mask = masking(64, GRID, generator=torch.Generator().manual_seed(3))
    per_slot = mask.mask.reshape(64, GRID[0], GRID[1] * GRID[2])
    slot_hidden = per_slot.all(-1)  # [B, T]: slots with every token hidden
    past = slot_hidden[:, :2].all(1) & ~slot_hidden[:, 2:].any(1)
    future = slot_hidden[:, -2:].all(1) & ~slot_hidden[:, :-2].any(1)
    assert (past ^ future).all()  # exactly one end is hidden, never both
    assert past.any() and future.any()  # both ends occur
    for row in range(64):
        seen = per_slot[row, 2:] if past[row] else per_slot[row, :-2]
        # One spatial mask shared by the seen slots, int(0.5 * 49) patches each.
        assert torch.equal(seen, seen[:1].expand_as(seen))
        assert seen[0].sum() == int(0.5 * GRID[1] * GRID[2])
    check_partition(mask, 8 * 49)
    assert masking.num_visible(GRID) == 6 * (49 - 24)


def test_random_masking_with_a_span_masks_only_within_the_seen_slots():
    masking = RandomMasking(ratio=0.5, span=0.5)
    mask = masking(16, GRID, generator=torch.Generator().manual_seed(0))
    per_slot = mask.mask.reshape(16, GRID[0], -1)
    hidden_whole = per_slot.all(-1)
    assert (hidden_whole.sum(1) >= 4).all()
    assert ((~mask.mask).sum(1) == 4 * 49 - int(0.5 * 4 * 49)).all()
    check_partition(mask, 8 * 49)


def test_span_zero_draws_the_masks_of_plain_tube_masking():
    a = TubeMasking(0.9)(4, GRID, generator=torch.Generator().manual_seed(5))
    b = TubeMasking(0.9, span=0.0)(4, GRID, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.ids_keep, b.ids_keep) and torch.equal(a.ids_mask, b.ids_mask)


def test_spans_that_hide_nothing_or_everything_are_refused():
    with pytest.raises(ValueError, match="mask.span"):
        TubeMasking(0.5, span=1.0)
    with pytest.raises(ValueError, match="hides 0 of the 8 time slots"):
        TubeMasking(0.5, span=0.05).num_visible(GRID)
