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


@pytest.mark.parametrize("masking", [TubeMasking(0.9), RandomMasking(0.9), RandomMasking(0.75)])
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
