"""Layers that describe their own connectivity (``edgewise_op``), e.g. fixed random global connections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgewise import pathways, receptive_field, trace
from edgewise._axis import Table
from edgewise.testing.brute import brute_pathways


class Gather(nn.Module):
    """Each of ``n`` flattened positions reads ``k`` fixed random positions of every input channel."""

    def __init__(self, c_in, c_out, n, k, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("idx", torch.randint(0, n, (n, k), generator=g))
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, generator=g))
        self.groups = 1

    def forward(self, x):  # (B, C, N) -> (B, C_out, N)
        return torch.einsum("bcnk,ock->bon", x[:, :, self.idx], self.weight)

    def edgewise_op(self, ndim):
        return "conv", (Table(tuple(tuple(int(i) for i in row) for row in self.idx.tolist())),)


class LocalPlusGlobal(nn.Module):
    def __init__(self, size=6, k=3):
        super().__init__()
        self.size = size
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.glob = Gather(1, 2, size * size, k)
        self.conv2 = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x):
        y = self.conv(x) + self.glob(x.flatten(2)).view(x.shape[0], 2, self.size, self.size)
        return self.conv2(y)


def _ones(net):
    with torch.no_grad():
        for m in net.modules():
            for name, p in m.named_parameters(recurse=False):
                p.fill_(1.0 if name == "weight" else 0.0)
    return net.double()


@pytest.mark.parametrize("k", [1, 3])
def test_table_connections_count_exactly(k):
    net = LocalPlusGlobal(k=k)
    graph = trace(net, (1, 6, 6))
    assert graph["glob"].kind == "conv" and isinstance(graph["glob"].axes[0], Table)
    counts = pathways(net, (1, 6, 6), exact=True).counts
    np.testing.assert_array_equal(counts, brute_pathways(net, (1, 6, 6)))
    x = torch.zeros(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    _ones(net)(x).sum().backward()  # the all-ones network's gradient is the path count
    np.testing.assert_array_equal(x.grad[0, 0].numpy(), counts.astype(float))


def test_global_connections_flatten_the_map():
    local = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 1, 3, padding=1))
    gap = pathways(local, (1, 6, 6)).summary["center_corner_ratio"]
    mixed = pathways(LocalPlusGlobal(k=3), (1, 6, 6)).summary["center_corner_ratio"]
    assert gap > mixed


def test_receptive_field_of_a_table_layer_is_the_whole_input():
    rf = receptive_field(LocalPlusGlobal(), (1, 6, 6))
    assert rf["glob"].size == (6, 6)
