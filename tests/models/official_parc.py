"""Test helpers for the ParC ConvNets: official state dicts synthesised from the spec's key/shape list,
and the official ParC operator written as an explicit sum of rolled maps."""
import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SPEC = Path(os.environ.get("DANLU_SPEC", REPO.parent / "shared" / "spec")) / "parc_official_state_dicts.json"


def official_state_dict(name):
    """Random tensors under the official keys and shapes of `name` (a key of the spec JSON), and its parameter count."""
    if not SPEC.is_file():
        pytest.skip(f"official key list not found at {SPEC}; set DANLU_SPEC to the shared spec folder")
    entry = json.loads(SPEC.read_text())[name]
    gen = torch.Generator().manual_seed(1)
    sd = {}
    for key, shape in entry["state_dict"]:
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=gen) * 0.1
    return sd, entry["params"]


def official_parc(x, weight, bias, pe, code_type):
    """The official ParC_operator: code type 'H' has a (K, 1) kernel along the HEIGHT, 'W' a (1, K) one along the width.

    y[b,o,i,j] = bias[o] + sum_{c,s} weight[o,c,s] * (x + pe)[b, g(o)*cg + c, (i+s) % H, j]  (for 'H').
    """
    x = x + pe if pe is not None else x
    axis = 2 if code_type == "H" else 3
    k = weight.flatten(2)  # (C_out, C_in/groups, K)
    groups = x.shape[1] // k.shape[1]
    xg = x.view(x.shape[0], groups, k.shape[1], *x.shape[2:])
    kg = k.view(groups, -1, k.shape[1], k.shape[2])
    y = sum(torch.einsum("bgchw,goc->bgohw", torch.roll(xg, -s, dims=axis + 1), kg[..., s]) for s in range(k.shape[2]))
    return y.reshape(x.shape[0], -1, *x.shape[2:]) + bias.view(1, -1, 1, 1)


def official_split_parc(x, sd, prefix):
    """The official block's ParC pair: gcc_H on the first channel half, gcc_W on the second."""
    x1, x2 = x.chunk(2, dim=1)
    return torch.cat([official_parc(x1, sd[prefix + "gcc_H.gcc_conv.weight"], sd[prefix + "gcc_H.gcc_conv.bias"],
                                    sd[prefix + "gcc_H.pe"], "H"),
                      official_parc(x2, sd[prefix + "gcc_W.gcc_conv.weight"], sd[prefix + "gcc_W.gcc_conv.bias"],
                                    sd[prefix + "gcc_W.pe"], "W")], dim=1)
