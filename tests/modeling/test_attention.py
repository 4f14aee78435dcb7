"""The two properties UltraDet's temporal layers rely on: masked keys have no influence at all,
and a query without any visible key gets a zero update (not NaN); and the relation layers'
geometry feature against a per-pair reference."""

import math

import torch

from usvid.modeling.roi_heads import MaskedMultiheadAttention, relative_geometry


def _attention():
    torch.manual_seed(0)
    return MaskedMultiheadAttention(16, 4).eval()


def test_masked_keys_do_not_change_the_output_and_keyless_queries_get_only_the_output_bias():
    attention = _attention()
    query, key = torch.randn(3, 2, 16), torch.randn(3, 5, 16)
    mask = torch.ones(3, 2, 5, dtype=torch.bool)
    mask[0, 0, 3:] = False  # query (0, 0) sees keys 0-2 only
    mask[1, 1] = False  # query (1, 1) sees nothing
    bias = torch.randn(3, 4, 2, 5)
    with torch.no_grad():
        out = attention(query, key, mask, bias)
        changed_key = key.clone()
        changed_key[0, 3:] += 100.0
        out_changed = attention(query, changed_key, mask, bias)
        only_visible = attention(query[:1, :1], key[:1, :3], None, bias[:1, :, :1, :3])
    assert torch.isfinite(out).all()
    assert torch.allclose(out[0, 0], out_changed[0, 0], atol=1e-6)  # hidden keys moved, output did not
    assert not torch.allclose(out[0, 1], out_changed[0, 1])  # a query that sees them does change
    assert torch.allclose(out[0, 0], only_visible[0, 0], atol=1e-6)  # = attending to the visible keys alone
    assert torch.allclose(out[1, 1], attention.out.bias, atol=1e-6)


def test_relative_geometry_matches_the_per_pair_formula():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 0.5, 8.0]])
    keys = torch.tensor([[10.0, 20.0, 30.0, 60.0], [40.0, 5.0, 80.0, 25.0], [3.0, 3.0, 3.2, 3.4]])
    geometry = relative_geometry(boxes, keys)
    for i, (qx1, qy1, qx2, qy2) in enumerate(boxes.tolist()):
        qw, qh = max(qx2 - qx1, 1.0), max(qy2 - qy1, 1.0)
        for j, (kx1, ky1, kx2, ky2) in enumerate(keys.tolist()):
            kw, kh = max(kx2 - kx1, 1.0), max(ky2 - ky1, 1.0)
            expected = [
                math.log(max(abs((kx1 + kx2) / 2 - (qx1 + qx2) / 2) / qw, 1e-3)),
                math.log(max(abs((ky1 + ky2) / 2 - (qy1 + qy2) / 2) / qh, 1e-3)),
                math.log(kw / qw),
                math.log(kh / qh),
            ]
            assert torch.allclose(geometry[i, j], torch.tensor(expected), atol=1e-5), (i, j)
