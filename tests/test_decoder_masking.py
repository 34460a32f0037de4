import pytest
import torch
import torch.nn.functional as F

from video_mae.masking import RunningCellMasking, TubeMasking
from video_mae.models import MaskedAutoencoder, VisionTransformer3D
from video_mae.models.patchify import normalize_patches, patchify


def reference_cell(grid, masked_per_cell, phase):
    """VideoMAE V2's running cell written out loop by loop: a queue of 4 places,
    `masked_per_cell` ones first; the pointer advances before each time slot and
    the 2x2 cell reads the queue from the pointer on."""
    t, h, w = grid
    queue = [1] * masked_per_cell + [0] * (4 - masked_per_cell)
    visible = []
    pointer = phase
    for _ in range(t):
        pointer += 1
        cell = [queue[(i + pointer) % 4] for i in range(4)]
        for row in range(h):
            for col in range(w):
                visible.append(cell[(row % 2) * 2 + col % 2] == 0)
    return torch.tensor(visible)


@pytest.mark.parametrize("ratio,masked_per_cell", [(0.25, 1), (0.5, 2), (0.75, 3)])
def test_running_cell_matches_the_loop_definition(ratio, masked_per_cell):
    grid = (4, 6, 6)
    masking = RunningCellMasking(ratio)
    visible = masking.cell_visible(64, grid, "cpu", torch.Generator().manual_seed(0))
    references = [reference_cell(grid, masked_per_cell, phase) for phase in range(4)]
    for row in visible:
        assert any(torch.equal(row, ref) for ref in references)
    # Every phase is drawn, so samples do not all share one pattern.
    assert len({tuple(row.tolist()) for row in visible}) == 4


def test_running_cell_reaches_every_patch_within_four_time_slots():
    visible = RunningCellMasking(0.5).cell_visible(1, (4, 4, 4), "cpu").reshape(4, 16)
    assert (visible.sum(dim=1) == 8).all()  # half of each time slot
    assert (visible.sum(dim=0) == 2).all()  # each patch in two of the four slots


@pytest.mark.parametrize("ratio", [0.0, 0.2, 1.0])
def test_ratios_that_leave_no_cell_pattern_are_refused(ratio):
    with pytest.raises(ValueError, match="decoder_mask_ratio"):
        RunningCellMasking(ratio)


def test_selection_is_a_fixed_size_subset_of_the_hidden_tokens_preferring_the_cell():
    grid = (8, 14, 14)
    mask = TubeMasking(0.9)(32, grid, generator=torch.Generator().manual_seed(1))
    masking = RunningCellMasking(0.5)
    chosen = masking.select(mask, grid, torch.Generator().manual_seed(2))
    n_masked = mask.ids_mask.shape[1]
    assert chosen.shape == (32, masking.num_predicted(n_masked)) == (32, n_masked // 2)
    # The cell the selection drew is the first thing drawn from the same seed.
    cell = masking.cell_visible(32, grid, "cpu", torch.Generator().manual_seed(2))
    for b in range(32):
        picked = chosen[b]
        assert torch.equal(picked, picked.sort().values) and len(set(picked.tolist())) == len(picked)
        assert mask.mask[b, picked].all()  # only tokens the encoder did not see
        in_cell = int(cell[b, picked].sum())
        available = int((cell[b] & mask.mask[b]).sum())
        assert in_cell == min(available, len(picked))


def tiny(decoder_masking):
    torch.manual_seed(0)
    encoder = VisionTransformer3D(img_size=32, patch_size=8, num_frames=8, tubelet_size=2, embed_dim=32, depth=2, num_heads=2)
    return MaskedAutoencoder(
        encoder, TubeMasking(0.75), decoder_dim=24, decoder_depth=1, decoder_num_heads=2, decoder_masking=decoder_masking
    )


def test_training_reconstructs_and_scores_only_the_selected_tokens():
    model = tiny(RunningCellMasking(0.5)).train()
    video = torch.randn(2, 3, 8, 32, 32)
    mask = model.make_mask(2, torch.device("cpu"), torch.Generator().manual_seed(0))
    out = model(video, mask=mask, generator=torch.Generator().manual_seed(4))
    n_masked = mask.ids_mask.shape[1]
    assert out.ids_pred.shape == (2, n_masked // 2)
    assert out.pred.shape == (2, n_masked // 2, 2 * 8 * 8 * 3)
    patches = normalize_patches(patchify(video * model.pixel_std + model.pixel_mean, 2, 8)).flatten(2)
    targets = torch.stack([patches[b, out.ids_pred[b]] for b in range(2)])
    assert torch.allclose(out.loss, F.mse_loss(out.pred, targets), atol=1e-6)
    out.loss.backward()
    assert model.mask_token.grad.abs().sum() > 0


def test_decoder_masking_leaves_the_encoder_alone_and_evaluation_reconstructs_everything():
    plain, masked = tiny(None), tiny(RunningCellMasking(0.5))
    video = torch.randn(2, 3, 8, 32, 32)
    mask = plain.make_mask(2, torch.device("cpu"), torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(plain.encoder(video, mask.ids_keep), masked.encoder(video, mask.ids_keep))
        plain.eval(), masked.eval()
        a, b = plain(video, mask=mask), masked(video, mask=mask)
    assert torch.equal(b.ids_pred, mask.ids_mask)
    assert torch.equal(a.pred, b.pred)


def test_decoder_masking_makes_the_step_cheaper():
    from torch.utils.flop_counter import FlopCounterMode

    video = torch.randn(2, 3, 8, 32, 32)
    flops = []
    for model in (tiny(None), tiny(RunningCellMasking(0.5))):
        mask = model.make_mask(2, torch.device("cpu"), torch.Generator().manual_seed(0))
        with FlopCounterMode(display=False) as counter:
            model(video, mask=mask).loss.backward()
        flops.append(counter.get_total_flops())
    assert flops[1] < 0.8 * flops[0]


def test_under_data_parallelism_a_clip_gets_the_same_pick_whatever_the_number_of_ranks():
    model = tiny(RunningCellMasking(0.5)).train()
    full = model.make_mask(4, torch.device("cpu"), torch.Generator().manual_seed(7))
    model.partition_masks(4, [1, 3])  # rank 1 of 2
    share = model.make_mask(2, torch.device("cpu"), torch.Generator().manual_seed(7))
    assert torch.equal(share.ids_mask, full.ids_mask[[1, 3]])
    assert torch.equal(share.ids_pred, full.ids_pred[[1, 3]])
    model.eval()
    assert model.make_mask(2, torch.device("cpu"), torch.Generator().manual_seed(7)).ids_pred is None
