"""What one fit trains: the signal as the network sees it, and the objective over it.

The base estimator builds a :class:`FitSignal` for every fit and asks the architecture
for an :class:`Objective` over it (``BaseINR._objective``); then it runs the objective
and stores what it says the fit produced. An architecture never writes on the
estimator during a fit: whatever it learns about the data (cells without points, a
fast path taken) goes back as the objective's ``fitted`` attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .acceleration import compile_network
from .batches import iterate_batches
from .domain import normalise, normalise_values, normalised_chunks

__all__ = ["FitSignal", "Objective"]

#: ``(coords, values) -> loss()``: the loss over a whole held signal, set up once per fit.
WholeSignalLoss = Callable[[Tensor, Tensor], Callable[[], Tensor]]


@dataclass
class Objective:
    """One fit's training objective, as an architecture declares it.

    Attributes
    ----------
    loss : callable
        ``loss(batch) -> scalar Tensor`` for each batch that ``batches`` yields.
    batches : iterator
        The sample indices of each step (``None``: the whole signal).
    fitted : dict
        Fitted attributes (names ending in ``_``) the fit produces besides the
        base's; assigned only when training succeeded.
    frozen : list of (Parameter, Tensor or None)
        Gradients to mask during this fit: each parameter's gradient is multiplied by
        its mask (broadcast), or zeroed when the mask is None.
    penalty : callable or None
        ``penalty() -> scalar Tensor``, a regulariser of the parameters alone (e.g. a
        grid's total variation) that ``loss`` already includes; a fit through an
        operator adds it to the measured loss too.
    """

    loss: Callable[[Tensor | None], Tensor]
    batches: Iterator[Tensor | None]
    fitted: dict[str, Any] = field(default_factory=dict)
    frozen: list[tuple[nn.Parameter, Tensor | None]] = field(default_factory=list)
    penalty: Callable[[], Tensor] | None = None


class FitSignal:
    """The training signal of one fit, in the network's frame, held or streamed.

    Held: the normalised coordinates and values live on the fit's device for the
    whole fit (:meth:`held`). Streamed (a big signal sampled in batches): every batch
    is gathered from the caller's arrays and normalised per step, so the signal is
    never copied; passes over all of it run chunk by chunk (:meth:`chunks`).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_dims)
        Validated coordinates, in the caller's frame.
    y2d : ndarray of shape (n_samples, n_outputs)
        Validated values.
    domain : ndarray of shape (n_dims, 2)
        The box mapped to [-1, 1].
    value_map : (float, float)
        Offset and scale mapping the values to [-1, 1].
    device : torch.device
        Where the network trains.
    batch_size : int or None
        Samples per step (None or at least ``n_samples``: the whole signal).
    streamed : bool
        Whether batches are read from the caller's arrays.
    chunk_size : int
        Rows per chunk of a pass over a streamed signal.
    compile_network : bool
        Whether a streamed fit compiles the network (a held fit compiles its whole
        loss instead; the base does that).
    """

    def __init__(
        self,
        X: np.ndarray,
        y2d: np.ndarray,
        domain: np.ndarray,
        value_map: tuple[float, float],
        device: torch.device,
        *,
        batch_size: int | None = None,
        streamed: bool = False,
        chunk_size: int = 65536,
        compile_network: bool = False,
    ) -> None:
        self.X, self.y2d, self.domain, self.value_map = X, y2d, domain, value_map
        self.device, self.batch_size, self.streamed = device, batch_size, streamed
        self.chunk_size, self.compile_network = chunk_size, compile_network
        self._held: tuple[Tensor, Tensor] | None = None

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def sampled(self) -> bool:
        """Whether each step sees a sample of the signal rather than all of it."""
        return self.batch_size is not None and self.batch_size < self.n_samples

    def held(self) -> tuple[Tensor, Tensor]:
        """The normalised coordinates and values on the device (copied once per fit)."""
        if self.streamed:
            raise RuntimeError("A streamed signal is never held whole; use chunks().")
        if self._held is None:
            coords = normalise(self.X, self.domain)
            values = normalise_values(self.y2d, *self.value_map)
            self._held = (
                torch.as_tensor(coords, dtype=torch.float32, device=self.device),
                torch.as_tensor(values, dtype=torch.float32, device=self.device),
            )
        return self._held

    def chunks(self) -> Iterator[Tensor]:
        """The normalised coordinates a chunk at a time (a held signal is one chunk)."""
        if not self.streamed:
            yield self.held()[0]
            return
        for _, coords in normalised_chunks(self.X, self.domain, self.chunk_size):
            yield coords

    @property
    def batch_device(self) -> torch.device:
        """Where sample indices live: with a held signal, or on the CPU for numpy."""
        return torch.device("cpu") if self.streamed else self.device

    def objective(
        self,
        forward: Callable[[Tensor], Tensor],
        generator: torch.Generator,
        *,
        whole_signal: WholeSignalLoss | None = None,
        batches: Iterator[Tensor | None] | None = None,
        fitted: dict[str, Any] | None = None,
        frozen: list[tuple[nn.Parameter, Tensor | None]] | None = None,
        penalty: Callable[[], Tensor] | None = None,
    ) -> Objective:
        """The mean squared error of ``forward`` over this signal's batches.

        Parameters
        ----------
        forward : callable
            Maps a batch of normalised coordinates ``(n, n_dims)`` to predictions
            ``(n, n_outputs)``.
        generator : torch.Generator
            Draws the batches (when ``batches`` is None).
        whole_signal : callable or None
            A faster loss over the whole held signal (e.g. points grouped once per
            fit), given the held coordinates and values; None uses ``forward``.
        batches : iterator or None
            The steps' sample indices; None draws ``batch_size`` samples without
            replacement per step, or the whole signal.
        fitted, frozen, penalty
            As :class:`Objective`'s; ``penalty()`` is added to every batch's loss.
        """
        if batches is None:
            batches = iterate_batches(self.n_samples, self.batch_size, generator, self.batch_device)
        loss = (
            self._streamed_loss(forward)
            if self.streamed
            else self._held_loss(forward, whole_signal)
        )
        if penalty is not None:
            data_loss = loss

            def loss(batch: Tensor | None) -> Tensor:
                return data_loss(batch) + penalty()

        return Objective(loss, batches, dict(fitted or {}), list(frozen or []), penalty)

    def _held_loss(self, forward, whole_signal) -> Callable[[Tensor | None], Tensor]:
        coords, values = self.held()
        whole = None if whole_signal is None else whole_signal(coords, values)

        def loss_fn(batch: Tensor | None) -> Tensor:
            if batch is not None:
                return nn.functional.mse_loss(forward(coords[batch]), values[batch])
            if whole is not None:
                return whole()
            return nn.functional.mse_loss(forward(coords), values)

        return loss_fn

    def _streamed_loss(self, forward) -> Callable[[Tensor], Tensor]:
        if self.compile_network:
            forward = compile_network(forward)
        X, y2d, domain, device = self.X, self.y2d, self.domain, self.device
        offset, scale = self.value_map

        def loss_fn(batch: Tensor) -> Tensor:
            index = batch.numpy()
            coords = torch.from_numpy(normalise(X[index], domain)).to(device)
            values = torch.from_numpy(normalise_values(y2d[index], offset, scale)).to(device)
            return nn.functional.mse_loss(forward(coords), values)

        return loss_fn
