"""The training loop against a hand-written loop, and its batching and schedules."""

import math
import re
import time
import warnings

import numpy as np
import pytest
import torch

from skinr._core.batches import iterate_batches
from skinr._core.loop import SCHEDULES, DivergenceGuard, make_scheduler, train
from skinr.estimators.siren import SirenNet


def _problem():
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(64, 2, generator=g) * 2 - 1
    values = torch.sin(3 * coords[:, :1]) * coords[:, 1:]
    return coords, values


def test_train_equals_hand_written_loop_step_for_step():
    coords, values = _problem()
    module = SirenNet(2, 1, 16, 1, generator=torch.Generator().manual_seed(1))
    reference = SirenNet(2, 1, 16, 1, generator=torch.Generator().manual_seed(1))

    def loss_fn(batch):
        return torch.nn.functional.mse_loss(module(coords), values)

    batches = iterate_batches(64, None, torch.Generator(), coords.device)
    result = train(module.parameters(), loss_fn, batches, learning_rate=1e-3, max_iter=25)

    # skinr uses torch's fused Adam kernel (same update, one pass); so does the reference.
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3, fused=True)
    expected = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(reference(coords), values)
        loss.backward()
        optimizer.step()
        expected.append(loss.item())
    assert result.loss_curve == expected
    for a, b in zip(module.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_minibatches_cover_each_pass_without_repeats():
    batches = iterate_batches(10, 3, torch.Generator().manual_seed(0), torch.device("cpu"))
    first_pass = torch.cat([next(batches) for _ in range(3)])
    assert len(set(first_pass.tolist())) == 9  # the incomplete tail batch is skipped
    assert next(batches).shape == (3,)
    full = iterate_batches(10, 10, torch.Generator(), torch.device("cpu"))
    assert next(full) is None


def test_fused_adam_matches_default_adam_closely():
    coords, values = _problem()
    curves = []
    for fused in (None, True):
        module = SirenNet(2, 1, 16, 1, generator=torch.Generator().manual_seed(1))
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, fused=fused)
        curve = []
        for _ in range(50):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(module(coords), values)
            loss.backward()
            optimizer.step()
            curve.append(loss.item())
        curves.append(curve)
    assert curves[0][-1] == pytest.approx(curves[1][-1], rel=1e-3)


def test_malloc_tuning_lasts_only_while_a_fit_trains(monkeypatch):
    """A library may tune the process's allocator for its own loop, not for the rest."""
    from skinr._core import acceleration as _acceleration

    for name in _acceleration._GLIBC_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SKINR_MALLOC_TUNING", raising=False)
    calls = []
    fake = (
        lambda param, value: calls.append((param, value)) or 1,
        lambda pad: calls.append("trim"),
    )
    monkeypatch.setattr(_acceleration, "_glibc", lambda: fake)
    with _acceleration.recycled_memory() as outer, _acceleration.recycled_memory() as inner:
        assert outer and inner
        # Set once for nested or concurrent fits; nothing undone while one still trains.
        assert calls == [(-3, 1 << 30), (-1, 1 << 30)]
    assert calls[2:] == [(-3, 32 << 20), (-1, 64 << 20), "trim"]
    assert _acceleration._MALLOC_USERS == 0


@pytest.mark.parametrize(
    "variable, value",
    [("SKINR_MALLOC_TUNING", "0"), ("MALLOC_MMAP_THRESHOLD_", "65536"), ("LD_PRELOAD", "x.so")],
)
def test_malloc_tuning_leaves_a_users_own_settings_alone(monkeypatch, variable, value):
    from skinr._core import acceleration as _acceleration

    monkeypatch.setattr(_acceleration, "_glibc", lambda: pytest.fail("malloc touched"))
    monkeypatch.setenv(variable, value)
    with _acceleration.recycled_memory() as tuned:
        assert tuned is False


def test_the_divergence_guard_copies_into_buffers_it_allocates_once():
    weight = torch.nn.Parameter(torch.ones(3))
    guard = DivergenceGuard([weight])
    guard.record(1.0, 1)
    buffer = guard.weights[0]
    with torch.no_grad():
        weight.mul_(2)
    guard.record(0.4, 2)
    assert guard.weights[0] is buffer and torch.equal(buffer, weight.detach())
    guard.record(0.3, 3)  # not under half of 0.4: no copy
    assert guard.step == 2


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_schedules_start_at_one_and_end_where_documented(schedule):
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_scheduler(optimizer, schedule, max_iter=11)
    rates = []
    for _ in range(11):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    ends = {"constant": 1.0, "cosine": 0.0, "exponential": 0.1}
    assert rates[0] == pytest.approx(1.0)
    assert rates[-1] == pytest.approx(ends[schedule], abs=1e-12)
    assert SCHEDULES[schedule](0.5) == pytest.approx(
        {"constant": 1.0, "cosine": 0.5, "exponential": math.sqrt(0.1)}[schedule]
    )


def test_a_blow_up_at_the_end_of_training_is_undone():
    """Adam leaving an almost exact fit (seen on LocalGlobalSIREN): the weights of the
    best loss come back, with a warning; a fit that ends near its best is untouched."""
    weight = torch.nn.Parameter(torch.tensor([3.0]))

    def loss_fn(batch):
        if len(losses) == 150:  # a jump far from the minimum, late in training
            with torch.no_grad():
                weight.add_(50.0)
        losses.append(None)
        return (weight**2).sum()

    losses = []
    with pytest.warns(RuntimeWarning, match="Training diverged"):
        result = train([weight], loss_fn, iter(lambda: None, 1), learning_rate=0.1, max_iter=160)
    assert result.restored_step is not None and result.restored_step <= 150
    assert weight.item() ** 2 < result.loss_curve[-1] / 100
    calm = torch.nn.Parameter(torch.tensor([3.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = train(
            [calm],
            lambda b: (calm**2).sum(),
            iter(lambda: None, 1),
            learning_rate=0.1,
            max_iter=160,
        )
    assert plain.restored_step is None


def _counting_loss(parameter, nan_from: int):
    calls = []

    def loss_fn(batch):
        calls.append(batch)
        loss = (parameter - 3.0).square().sum()
        return loss * float("nan") if len(calls) >= nan_from else loss

    return loss_fn


def test_a_non_finite_loss_stops_training_and_restores_finite_weights():
    parameter = torch.nn.Parameter(torch.tensor([0.0]))
    with pytest.warns(RuntimeWarning, match="not finite at step 6"):
        result = train(
            [parameter],
            _counting_loss(parameter, nan_from=6),
            iter([None] * 50),
            learning_rate=0.1,
            max_iter=50,
        )
    assert result.diverged and result.n_iter == 5
    assert all(math.isfinite(v) for v in result.loss_curve) and len(result.loss_curve) == 5
    assert torch.isfinite(parameter).all() and result.restored_step is not None


def test_a_loss_never_finite_raises():
    parameter = torch.nn.Parameter(torch.tensor([0.0]))
    with pytest.raises(FloatingPointError, match="not finite at step 1"):
        train(
            [parameter],
            _counting_loss(parameter, nan_from=1),
            iter([None] * 5),
            learning_rate=0.1,
            max_iter=5,
        )


def test_a_search_ranks_a_diverged_candidate_last():
    from skinr.model_selection import _finite_or_worst

    scores = {"nan": float("nan"), "good": 30.0, "worse": 20.0}
    assert max(scores, key=lambda k: _finite_or_worst(scores[k])) == "good"


def test_max_time_stops_training_after_the_step_that_passes_it():
    coords, values = _problem()
    module = SirenNet(2, 1, 16, 1, generator=torch.Generator().manual_seed(1))

    def slow_loss(batch):
        time.sleep(0.01)
        return torch.nn.functional.mse_loss(module(coords), values)

    batches = iterate_batches(64, None, torch.Generator(), coords.device)
    started = time.perf_counter()
    result = train(
        module.parameters(), slow_loss, batches, learning_rate=1e-3, max_iter=10**6, max_time=0.2
    )
    assert result.out_of_time and 1 <= result.n_iter < 10**6
    assert result.seconds[-1] >= 0.2 and result.seconds[-2] < 0.2
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("schedule", ["cosine", "exponential"])
def test_a_fit_the_clock_stops_ends_its_schedule_annealed(schedule):
    """With ``max_time`` the schedule follows the time where it is further along than
    the steps: a budget in seconds ends at the schedule's end, whatever ``max_iter``."""
    coords, values = _problem()
    module = SirenNet(2, 1, 16, 1, generator=torch.Generator().manual_seed(1))

    def slow_loss(batch):
        time.sleep(0.005)
        return torch.nn.functional.mse_loss(module(coords), values)

    batches = iterate_batches(64, None, torch.Generator(), coords.device)
    result = train(
        module.parameters(),
        slow_loss,
        batches,
        learning_rate=1e-3,
        max_iter=10**6,
        max_time=0.3,
        schedule=schedule,
    )
    assert result.out_of_time
    rates = np.asarray(result.learning_rates)
    assert rates[0] > 0.99e-3 and (np.diff(rates) <= 0).all()
    floor = SCHEDULES[schedule](1.0) * 1e-3
    assert rates[-1] < floor + 0.1 * (1e-3 - floor)  # the last step near the schedule's end


def test_history_records_every_step_and_continues_over_warm_starts():
    import numpy as np

    from skinr import SIREN
    from skinr.signals import to_coords

    X, y = to_coords(np.random.RandomState(0).random_sample((8, 8)))
    model = SIREN(
        width=8, depth=1, max_iter=6, lr_schedule="exponential", learning_rate=1e-3, warm_start=True
    )
    model.fit(X, y)
    history = model.history_
    assert history["step"] == [1, 2, 3, 4, 5, 6] and history["loss"] == model.loss_curve_
    assert history["learning_rate"][0] == pytest.approx(1e-3)
    assert history["learning_rate"][-1] == pytest.approx(1e-4)
    assert all(np.diff(history["seconds"]) > 0)
    model.fit(X, y)
    assert model.history_["step"] == list(range(1, 13))
    assert model.history_["seconds"][6] > history["seconds"][-1]
    assert model.history_["loss"] == model.loss_curve_


def test_a_compiled_fit_says_so_and_times_steps_after_the_compile(capsys):
    from skinr import SIREN

    update = SIREN(max_iter=4)._progress_bar(1.0, 1.0, compiling=True)
    time.sleep(0.3)  # the compile, inside the first step
    for step in range(1, 5):
        update(step, 0.1)
    update.close()
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any("compiling, one-off" in line for line in lines)
    final = [line for line in lines if "4/4" in line][-1]
    assert "(compiling" not in final
    # The rate is over the steps after the compile: not 4 steps in the 0.3 s.
    rate = float(re.search(r"([\d.]+)step/s", final).group(1))
    assert rate > 4 / 0.3
