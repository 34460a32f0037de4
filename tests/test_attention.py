import torch

from video_mae.models.layers import Attention, Block


def reference_attention(module: Attention, x: torch.Tensor) -> torch.Tensor:
    """Plain softmax attention written from the module's weights."""
    batch, tokens, dim = x.shape
    heads, head_dim = module.num_heads, dim // module.num_heads
    w_q, w_k, w_v = module.qkv.weight.split(dim)
    q = x @ w_q.T + module.q_bias
    k = x @ w_k.T  # no key bias
    v = x @ w_v.T + module.v_bias

    def split(t):
        return t.reshape(batch, tokens, heads, head_dim).transpose(1, 2)

    q, k, v = split(q), split(k), split(v)
    weights = torch.softmax(q @ k.transpose(-2, -1) / head_dim**0.5, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)
    return module.proj(out)


def test_sdpa_matches_reference_attention():
    torch.manual_seed(0)
    module = Attention(dim=48, num_heads=4).eval()
    with torch.no_grad():
        module.q_bias.normal_()
        module.v_bias.normal_()
    x = torch.randn(3, 37, 48)
    assert torch.allclose(module(x), reference_attention(module, x), atol=1e-5)


def test_sdpa_gradients_match_reference():
    torch.manual_seed(1)
    module = Attention(dim=32, num_heads=2)
    x = torch.randn(2, 11, 32, requires_grad=True)
    module(x).square().sum().backward()
    grad_sdpa = x.grad.clone()
    x.grad = None
    reference_attention(module, x).square().sum().backward()
    assert torch.allclose(grad_sdpa, x.grad, atol=1e-4)


def test_bias_layout_has_no_key_bias():
    module = Attention(dim=8, num_heads=2)
    with torch.no_grad():
        module.q_bias.fill_(1.0)
        module.v_bias.fill_(2.0)
    bias = module.qkv_bias()
    assert torch.equal(bias, torch.tensor([1.0] * 8 + [0.0] * 8 + [2.0] * 8))
    assert Attention(dim=8, num_heads=2, qkv_bias=False).qkv_bias() is None


def test_block_layer_scale_and_eps():
    block = Block(dim=16, num_heads=2, layer_scale_init=0.1)
    assert block.norm1.eps == 1e-6
    assert torch.allclose(block.gamma_1, torch.full((16,), 0.1))
    assert Block(dim=16, num_heads=2).gamma_1 is None


def test_explicit_cpu_attention_matches_the_fused_kernel_in_bf16():
    # The bf16 training path on the CPU (short sequences) computes attention explicitly;
    # its output and gradients must match SDPA's within bf16 rounding.
    from video_mae.models import layers

    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 3, 40, 16, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    assert layers._explicit_attention_pays(q)
    assert not layers._explicit_attention_pays(q.detach())  # forward-only passes keep the fused kernel
    grad_out = torch.randn(2, 3, 40, 16, dtype=torch.bfloat16)
    explicit = layers.attention(q, k, v)
    explicit.backward(grad_out)
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    fused.backward(grad_out)
    assert torch.allclose(explicit.float(), fused.float(), atol=2e-2, rtol=2e-2)
    for mine, theirs in zip(grads, (q.grad, k.grad, v.grad)):
        assert torch.allclose(mine.float(), theirs.float(), atol=5e-2, rtol=5e-2)
    assert (explicit.float() - fused.float()).abs().mean() < 5e-3
