"""Big signals: sampled training reads batches from the caller's arrays without copies."""

import tracemalloc

import numpy as np
import pytest
import torch

import skinr
from skinr._core.batches import KeyedPermutation, iterate_batches
from skinr.nn.cells import order_by_cell

from .conftest import ALL_ESTIMATORS, make_fast

# Every registered estimator whose extras are installed (LatentCodec needs the codec's).
STREAMING = list(ALL_ESTIMATORS)


@pytest.mark.parametrize("Estimator", STREAMING, ids=lambda c: c.__name__)
def test_streamed_batches_train_exactly_like_materialised_ones(
    Estimator, image_signal, monkeypatch
):
    X, y, _ = image_signal
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    # Small chunks: whole-signal passes (LoESine's sample spacing, the cell checks,
    # LocalGlobalSIREN's sort by partition) run chunk-wise.
    streamed = make_fast(Estimator, batch_size=64, predict_batch_size=50).fit(X32, y32)
    monkeypatch.setattr(Estimator, "_streams_batches", False)
    materialised = make_fast(Estimator, batch_size=64, predict_batch_size=50).fit(X32, y32)
    np.testing.assert_array_equal(streamed.loss_curve_, materialised.loss_curve_)
    np.testing.assert_array_equal(streamed.predict(X), materialised.predict(X))


def peak_numpy_bytes_during(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("Estimator", STREAMING, ids=lambda c: c.__name__)
def test_sampled_fit_does_not_copy_the_signal(Estimator):
    if Estimator is skinr.LatentCodec:
        pytest.skip(
            "LatentCodec's fit ends by range-coding its latents, one per sample: index "
            "arrays the size of the latents (not copies of X); its training streams"
        )
    # A 64 x 64 x 64 grayscale "video" in float32: 262,144 samples, 3 MB of coordinates.
    X, y = skinr.signals.to_coords(np.random.default_rng(0).random((64, 64, 64)))
    X, y = X.astype(np.float32), y.astype(np.float32)
    # Whole-signal passes (cell checks, sort by partition) read chunks of 2,048 rows.
    model = make_fast(Estimator, max_iter=3, batch_size=512, predict_batch_size=2048)
    warm_up = np.random.default_rng(1).choice(len(X), 4096, replace=False)
    model.fit(X[warm_up], y[warm_up])  # first-use imports and caches are not the signal's
    peak = peak_numpy_bytes_during(lambda: model.fit(X, y))
    # Per-batch arrays only; normalising the whole signal would allocate 2 x X.nbytes.
    assert peak < X.nbytes / 10, peak


def test_keyed_permutation_is_a_permutation():
    generator = torch.Generator().manual_seed(0)
    for n in (1, 2, 3, 17, 1000, 4097, 65_537):
        order = KeyedPermutation(n, generator)(torch.arange(n))
        assert torch.equal(torch.sort(order).values, torch.arange(n)), n
    # Seeded: the same generator state gives the same order; another gives another.
    first = KeyedPermutation(1000, torch.Generator().manual_seed(1))(torch.arange(1000))
    again = KeyedPermutation(1000, torch.Generator().manual_seed(1))(torch.arange(1000))
    other = KeyedPermutation(1000, torch.Generator().manual_seed(2))(torch.arange(1000))
    assert torch.equal(first, again) and not torch.equal(first, other)
    # Shuffled, not strided: consecutive positions are unrelated.
    order = first.double()
    assert abs(torch.corrcoef(torch.stack([order[:-1], order[1:]]))[0, 1]) < 0.1


def test_batches_above_the_randperm_limit_cover_each_sample_once(monkeypatch):
    monkeypatch.setattr("skinr._core.batches.RANDPERM_LIMIT", 100)
    batches = iterate_batches(1000, 100, torch.Generator().manual_seed(0), torch.device("cpu"))
    one_pass = torch.cat([next(batches) for _ in range(10)])
    assert torch.equal(torch.sort(one_pass).values, torch.arange(1000))
    assert not torch.equal(one_pass, torch.cat([next(batches) for _ in range(10)]))


def test_streamed_multihead_checks_cells_chunk_wise(image_signal):
    X, y, _ = image_signal
    holes = np.abs(X[:, 0]) > 0.5  # the middle rows missing: some heads get no point
    model = make_fast(skinr.MultiHeadReLU, heads=4, batch_size=64, predict_batch_size=37)
    model.fit(X[holes], y[holes])
    reference = make_fast(skinr.MultiHeadReLU, heads=4).fit(X[holes], y[holes])
    assert not model.grid_fast_path_ and len(model.empty_cells_) > 0
    np.testing.assert_array_equal(model.empty_cells_, reference.empty_cells_)
    with pytest.raises(ValueError, match="asks for 32 cells along dimension 0"):
        make_fast(skinr.MultiHeadReLU, heads=32, batch_size=64).fit(X, y)
    with pytest.raises(ValueError, match="fast_path=True trains on the whole grid"):
        make_fast(skinr.MultiHeadReLU, fast_path=True, batch_size=64).fit(X, y)


def test_every_estimator_streams_big_signals():
    assert all(Estimator._streams_batches for Estimator in skinr.ESTIMATORS.values())


def test_order_by_cell_is_a_stable_argsort_across_chunks():
    cell = torch.randint(0, 7, (1003,), generator=torch.Generator().manual_seed(0))
    for chunk in (1, 50, 1003, 5000):
        counts, order = order_by_cell(lambda chunk=chunk: iter(cell.split(chunk)), n_cells=9)
        assert order.dtype == torch.int32
        assert torch.equal(order.long(), torch.argsort(cell, stable=True)), chunk
        assert torch.equal(counts, torch.bincount(cell, minlength=9))


def test_order_by_cell_with_known_counts_reads_the_signal_once():
    cell = torch.randint(0, 7, (1003,), generator=torch.Generator().manual_seed(0))
    passes = []

    def chunks():
        passes.append(1)
        return iter(cell.split(100))

    known = torch.bincount(cell, minlength=9)
    counts, order = order_by_cell(chunks, n_cells=9, counts=known)
    assert len(passes) == 1
    assert torch.equal(order.long(), torch.argsort(cell, stable=True))
    assert torch.equal(counts, known)


@pytest.mark.parametrize(
    "Estimator, name", [(skinr.EnsembleINR, "grid"), (skinr.LocalGlobalSIREN, "partitions")]
)
def test_streamed_cell_models_check_cells_chunk_wise(Estimator, name, image_signal):
    X, y, _ = image_signal
    holes = np.abs(X[:, 0]) > 0.5  # the middle rows missing: some cells get no point
    streamed = make_fast(Estimator, **{name: 4}, batch_size=64, predict_batch_size=37)
    streamed.fit(X[holes], y[holes])
    reference = make_fast(Estimator, **{name: 4}).fit(X[holes], y[holes])
    assert len(streamed.empty_cells_) > 0
    np.testing.assert_array_equal(streamed.empty_cells_, reference.empty_cells_)
    with pytest.raises(ValueError, match="asks for 32 cells along dimension 0"):
        make_fast(Estimator, **{name: 32}, batch_size=64, predict_batch_size=37).fit(X, y)
