"""Points grouped by expert, layer after layer: how LoESine runs each position-dependent
layer as one batched product over its experts instead of a loop or a dense blend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..nn.cells import sort_by_cell

__all__ = ["ExpertRoutes"]


class _Regroup(torch.autograd.Function):
    """``x.index_select(0, gather)`` whose backward is a gather too.

    Every row of ``x`` is read by at most one real row of the result (padding rows
    read row 0 but receive no gradient), so the gradient is ``grad[inverse]`` with
    unread rows zeroed: a gather instead of the single-threaded ``scatter_add`` that
    ``index_select``'s backward runs.
    """

    @staticmethod
    def forward(ctx, x, gather, inverse, unread):
        ctx.save_for_backward(inverse, unread)
        return x.index_select(0, gather)

    @staticmethod
    def backward(ctx, grad):
        inverse, unread = ctx.saved_tensors
        grad_x = grad.index_select(0, inverse)
        if unread.numel():
            grad_x.index_fill_(0, unread, 0.0)
        return grad_x, None, None, None


@dataclass
class ExpertRoutes:
    """Points grouped by expert at every layer, as chained gathers.

    Layer ``k`` works on a ``(n_experts * capacity_k, f)`` layout: expert ``e``'s points
    fill rows ``e * capacity_k`` onwards; rows past an expert's count are padding (they
    gather row 0 and are never read back). ``gathers[k]`` picks each row of layer
    ``k``'s layout from layer ``k - 1``'s (from the input points for ``k = 0``);
    ``inverses[k]`` is the row of layer ``k``'s layout that read each source row (0
    for ``unread[k]``, the source's padding rows); ``rows[i]`` is point ``i``'s row in
    the last layout.
    """

    gathers: list[Tensor]
    inverses: list[Tensor]
    unread: list[Tensor]
    rows: Tensor

    @classmethod
    def from_experts(cls, experts: list[Tensor], n_experts: int) -> ExpertRoutes:
        """Build from each layer's expert index per point, ``(n,)`` each."""
        n_points = experts[0].shape[0]
        device = experts[0].device
        rows, n_source_rows = torch.arange(n_points, device=device), n_points
        gathers, inverses, unread = [], [], []
        for expert in experts:
            sort = sort_by_cell(expert, n_experts)
            order, capacity = sort.order, int(sort.counts.max()) if n_points else 0
            new_rows = sort.sorted_cell * capacity + sort.rank
            gather = torch.zeros(n_experts * capacity, dtype=torch.long, device=device)
            gather[new_rows] = rows[order]
            inverse = torch.full((n_source_rows,), -1, dtype=torch.long, device=device)
            inverse[rows[order]] = new_rows
            unread.append(torch.nonzero(inverse < 0).ravel())
            inverses.append(inverse.clamp_min(0))
            gathers.append(gather)
            rows = torch.empty_like(rows)
            rows[order] = new_rows
            n_source_rows = n_experts * capacity
        return cls(gathers, inverses, unread, rows)

    def regroup(self, layer: int, x: Tensor) -> Tensor:
        """Layer ``layer``'s grouped rows of ``x`` (the previous layer's layout)."""
        if not x.requires_grad:
            return x.index_select(0, self.gathers[layer])
        return _Regroup.apply(x, self.gathers[layer], self.inverses[layer], self.unread[layer])
