"""Models for the porting tests: hostile names, an op xcomp lacks, factories for `module:attr`."""
from __future__ import annotations

import torch
from torch import nn


class Hostile(nn.Module):
    """A submodule called `__import__('os')` and parameters called `class`, `self` and `print(1)`."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.add_module("__import__('os')", nn.Linear(4, 4))
        self.register_parameter("class", nn.Parameter(torch.randn(4)))
        self.register_parameter("self", nn.Parameter(torch.randn(4)))
        self.register_buffer("print(1)", torch.randn(4))
        self.register_buffer("mx", torch.randn(4))

    def forward(self, x):
        lin = getattr(self, "__import__('os')")
        return lin(x) * getattr(self, "class") + getattr(self, "self") - getattr(self, "print(1)") * self.mx


def hostile():
    return Hostile().eval(), (torch.randn(3, 4),)


class Zeta(nn.Module):
    """Uses an aten op the aten table has no converter for (special_zeta), twice."""

    def forward(self, x):
        return torch.special.zeta(x, 2.0) + torch.special.zeta(x + 1, 3.0)


def zeta():
    return Zeta(), (torch.rand(4) + 1,)


def not_a_model():
    return 42
