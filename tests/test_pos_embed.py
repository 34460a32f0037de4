import math

import pytest
import torch

from video_mae.models.pos_embed import sinusoid_table


@pytest.mark.parametrize("positions,dim", [(1568, 768), (64, 192), (10, 7)])
def test_table_is_videomae_interleaved_sinusoid(positions, dim):
    table = sinusoid_table(positions, dim)
    assert table.shape == (positions, dim) and table.dtype == torch.float32
    for pos in (0, 1, positions // 2, positions - 1):
        for channel in (0, 1, 2, 3, dim - 2, dim - 1):
            angle = pos / 10000 ** (2 * (channel // 2) / dim)
            expected = math.sin(angle) if channel % 2 == 0 else math.cos(angle)
            assert table[pos, channel].item() == pytest.approx(expected, abs=1e-6)


def test_encoder_uses_the_table_over_flattened_thw():
    from video_mae.models import VisionTransformer3D

    encoder = VisionTransformer3D(img_size=32, patch_size=16, num_frames=4, tubelet_size=2, embed_dim=16, depth=1, num_heads=2)
    assert torch.equal(encoder.pos_embed[0], sinusoid_table(2 * 2 * 2, 16))
    # Fixed: not a parameter, not in the state dict.
    assert "pos_embed" not in dict(encoder.named_parameters())
    assert "pos_embed" not in encoder.state_dict()
