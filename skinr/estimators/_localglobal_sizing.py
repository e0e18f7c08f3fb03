"""Automatic partitioning and widths of LocalGlobalSIREN (the paper's Appendix A).

Ashkenazi, Treister, "Towards Croppable Implicit Neural Representations", NeurIPS 2024;
the rules follow the authors' ``compute_partitions.py``.
"""

from __future__ import annotations

import math

__all__ = ["auto_partitions", "auto_widths"]


def auto_partitions(n_samples: tuple[int, ...], target_partition_size: int) -> tuple[int, ...]:
    """Partitions per dimension so that each holds about ``target_partition_size`` samples."""
    return tuple(max(1, math.ceil(n / target_partition_size)) for n in n_samples)


def _global_params(n_dims: int, width: int, depth: int) -> int:
    return n_dims * width + depth * width**2 + depth * width + width


def _local_params(n_dims: int, n_outputs: int, width: int, depth: int, groups: int) -> int:
    per_group = (
        n_dims * width + depth * width**2 + n_outputs * width + (depth + 1) * width + n_outputs
    )
    return groups * per_group


def _smallest_width(count, target: float) -> int:
    """Smallest width in [1, 1000] whose parameter count reaches ``target`` (bisection)."""
    low, high = 1, 1000
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if count(middle) < target else (low, middle)
    return low


def auto_widths(
    n_dims: int,
    n_outputs: int,
    depth: int,
    groups: int,
    n_params: int,
    global_ratio: float,
    local_only: bool = False,
) -> tuple[int, int]:
    """The paper's Appendix A: local and global widths for a total parameter budget.

    The global width is the smallest reaching ``global_ratio * n_params`` parameters
    (first and hidden layers with biases; the merge layer is not counted); the local
    width the smallest reaching 95 % of the rest; then the global width moves by one
    at a time towards 99 % of the budget while the global share stays within 25 % of
    ``global_ratio``. Returns ``(local_width, global_width)``; the global width is 0
    for ``local_only``.
    """
    if local_only:
        target = 0.95 * n_params
        local = _smallest_width(
            lambda w: _local_params(n_dims, n_outputs, w, depth, groups), target
        )
        return local, 0
    global_width = _smallest_width(
        lambda w: _global_params(n_dims, w, depth), n_params * global_ratio
    )
    global_count = _global_params(n_dims, global_width, depth)
    local_width = _smallest_width(
        lambda w: _local_params(n_dims, n_outputs, w, depth, groups),
        0.95 * (n_params - global_count),
    )
    local_count = _local_params(n_dims, n_outputs, local_width, depth, groups)
    share = global_count / n_params

    def share_ok(share):
        return abs(share - global_ratio) < 0.25 * global_ratio

    while global_count + local_count > 0.99 * n_params and share_ok(share) and global_width > 1:
        global_width -= 1
        global_count = _global_params(n_dims, global_width, depth)
        share = global_count / n_params
    while global_count + local_count < 0.99 * n_params and share_ok(share):
        global_width += 1
        global_count = _global_params(n_dims, global_width, depth)
        share = global_count / n_params
    return local_width, global_width
