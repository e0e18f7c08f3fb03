"""The command line: fit, render, compare and models, their outputs and their errors."""

import csv
import importlib.util
import json
import os
import re
import runpy
import stat
import subprocess
import sys

import numpy as np
import pytest

import skinr
import skinr.base
from skinr.cli import main

from .conftest import ROOT

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

TINY = ["--model", "SIREN", "--width", "16", "--depth", "1", "--learning-rate", "1e-3"]


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if any training starts: errors must come before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(skinr.base.BaseINR, "_training_loop", staticmethod(refuse))


def test_fit_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    previous = os.umask(0o022)
    try:
        status = main(
            [
                "fit",
                "--steps",
                "15",
                "--size",
                "16",
                *TINY,
                "--scale",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
    finally:
        os.umask(previous)
    assert status == 0
    expected = [
        "reconstruction.png",
        "comparison.png",
        "superres_2x.png",
        "superres_2x_vs_bicubic.png",
        "curve.png",
        "history.csv",
        "metrics.json",
        "model.skinr",
    ]
    for name in expected:
        path = out / name
        assert path.stat().st_size > 0, name
        assert path.stat().st_mode & stat.S_IRGRP, f"{name} is not readable by the group"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 15 and metrics["signal"]["shape"] == [16, 16]
    assert metrics["model"] == "SIREN"
    assert metrics["params"]["width"] == 16 and metrics["params"]["max_iter"] == 15
    assert metrics["params"]["learning_rate"] == 1e-3
    assert {"skinr", "torch", "numpy", "scikit-learn", "python"} <= set(metrics["versions"])
    assert metrics["device"] == "cpu" and metrics["psnr_db"] > 10 and 0 < metrics["ssim"] <= 1
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 16))
    assert float(rows[0]["learning_rate"]) == pytest.approx(1e-3)
    assert float(rows[-1]["seconds"]) > float(rows[0]["seconds"]) > 0
    assert "PSNR" in capsys.readouterr().out
    model = skinr.load(out / "model.skinr")
    assert model.width == 16 and model.n_iter_ == 15 and model.grid_shape_ == (16, 16)
    assert np.asarray(Image.open(out / "superres_2x.png")).shape[:2] == (32, 32)


def test_any_parameter_is_reachable_with_set(tmp_path):
    out = tmp_path / "o"
    argv = [
        "fit",
        "--size",
        "12",
        "--model",
        "siren",
        "--steps",
        "3",
        "--quiet",
        "--set",
        "width=8",
        "--set",
        "depth=1",
        "--set",
        "first_omega_0=12.5",
        "--set",
        "lr_schedule=cosine",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    params = json.loads((out / "metrics.json").read_text())["params"]
    assert params["first_omega_0"] == 12.5 and params["lr_schedule"] == "cosine"


def _png16(path, values):
    Image.fromarray(values.astype(np.uint16)).save(path)


def test_sixteen_bit_images_are_read_at_their_depth(tmp_path):
    ramp = np.linspace(20000, 60000, 12 * 10).reshape(12, 10)
    _png16(tmp_path / "deep.png", ramp)
    assert (
        main(
            [
                "fit",
                str(tmp_path / "deep.png"),
                *TINY,
                "--steps",
                "60",
                "--quiet",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["signal"]["dtype"] == "uint16"
    assert metrics["psnr_db"] > 20  # misread as 0..65535 it scores about -80 dB


def test_size_only_shrinks(tmp_path):
    pixels = (np.random.RandomState(0).random_sample((12, 20)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "small.png")
    for size, expected in [("64", [12, 20]), ("10", [6, 10])]:
        out = tmp_path / size
        argv = [str(tmp_path / "small.png"), *TINY, "--steps", "2", "--size", size]
        assert main(["fit", *argv, "--quiet", "--out", str(out)]) == 0
        assert json.loads((out / "metrics.json").read_text())["signal"]["shape"] == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "Sirne"], "did you mean SIREN"),
        (
            ["--model", "LocalGlobalSIREN", "--width", "32"],
            "LocalGlobalSIREN has no parameter 'width'",
        ),
        (["--set", "widht=3"], "did you mean 'width'"),
        (["--set", "width"], "NAME=VALUE"),
        (["--model", "SIREN", "--set", "width=abc"], "'width' parameter of SIREN"),
        (["--size", "0"], "--size must be at least 8"),
        (["--scale", "0"], "--scale must be at least 1"),
        (["--scale", "100000"], "exceeds"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--steps", "3", "--seconds", "2"], "not both"),
        (["--seconds", "-1"], "--seconds must be positive"),
    ],
)
def test_bad_options_fail_in_one_line_before_training(tmp_path, capsys, no_training, argv, message):
    assert main(["fit", "--size", "16", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skinr: error:") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o" / "model.skinr").exists()


def test_bad_files_and_folders_fail_in_one_line(tmp_path, capsys, no_training):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "data.xyz").write_bytes(b"\0" * 10)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    cases = [
        ([str(tmp_path / "missing.png")], "no such file"),
        ([str(tmp_path / "notes.png")], "not a readable .png file"),
        ([str(tmp_path / "data.xyz")], "unknown signal format"),
        (["--out", str(tmp_path / "blocker" / "sub")], "cannot write there"),
    ]
    for argv, message in cases:
        if "--out" not in argv:
            argv = [*argv, "--out", str(tmp_path / "o")]
        assert main(["fit", "--size", "16", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_a_seconds_budget_below_one_step_is_refused(tmp_path, capsys):
    assert (
        main(["fit", "--size", "16", *TINY, "--seconds", "1e-7", "--out", str(tmp_path / "o")]) == 2
    )
    assert "less than one training step" in capsys.readouterr().err
    assert not (tmp_path / "o" / "model.skinr").exists()


def test_seconds_budget_is_spent_and_stops_the_fit(tmp_path):
    assert (
        main(
            [
                "fit",
                "--size",
                "16",
                *TINY,
                "--seconds",
                "0.5",
                "--quiet",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((tmp_path / "o" / "history.csv").open()))
    params = json.loads((tmp_path / "o" / "metrics.json").read_text())["params"]
    assert params["max_time"] == 0.5
    # The clock ends the fit, not a step count the probe guessed: the budget is spent
    # (a fit of 23 steps in 79 of its 150 s was reported).
    assert len(rows) < params["max_iter"]
    assert 0.5 <= float(rows[-1]["seconds"]) < 2.0


def test_unexpected_errors_are_one_line_too(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr(skinr.base.BaseINR, "_training_loop", staticmethod(broken))
    assert main(["fit", "--size", "16", *TINY, "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "skinr: error: RuntimeError: something inside broke (SKINR_DEBUG=1 shows the traceback)\n"
    )


def test_fit_audio_writes_sound_and_waveforms(tmp_path):
    from scipy.io import wavfile

    rate = 4000
    t = np.arange(400) / rate
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 330 * t)], 1)
    wavfile.write(tmp_path / "clip.wav", rate, (stereo * 30000).astype(np.int16))
    out = tmp_path / "o"
    assert (
        main(
            ["fit", str(tmp_path / "clip.wav"), *TINY, "--steps", "5", "--quiet", "--out", str(out)]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["signal"]["kind"] == "audio" and metrics["signal"]["shape"] == [400, 2]
    assert metrics["signal"]["spacing"] == [1 / rate] and metrics["signal"]["units"] == ["s"]
    back_rate, back = wavfile.read(out / "reconstruction.wav")
    assert back_rate == rate and back.shape == (400, 2)
    up_rate, up = wavfile.read(out / "superres_4x.wav")
    assert up_rate == 4 * rate and up.shape == (1600, 2)
    assert back.dtype == up.dtype == np.int16  # as the input
    assert (out / "waveform.png").stat().st_size > 0
    assert (out / "superres_4x_vs_cubic.png").stat().st_size > 0


def test_a_float_wav_is_written_as_float_and_the_files_psnr_is_reported(tmp_path):
    """A float WAV's reconstruction is written as float (16-bit PCM lost 0.6 dB of a
    92 dB fit), and metrics.json reports the PSNR of the file as written."""
    sf = pytest.importorskip("soundfile")
    rate = 4000
    t = np.arange(400) / rate
    clip = 0.8 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * t)
    sf.write(tmp_path / "clip.wav", clip, rate, subtype="FLOAT")
    out = tmp_path / "o"
    argv = ["fit", str(tmp_path / "clip.wav"), *TINY, "--steps", "150", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    assert sf.info(out / "reconstruction.wav").subtype == "FLOAT"
    assert sf.info(out / "superres_4x.wav").subtype == "FLOAT"
    metrics = json.loads((out / "metrics.json").read_text())
    back, _ = sf.read(out / "reconstruction.wav", dtype="float64")
    stored, _ = sf.read(tmp_path / "clip.wav", dtype="float64")  # the clip as float32 holds it
    on_file = skinr.metrics.psnr(stored, back, data_range=2.0)  # audio's peak, [-1, 1]
    assert metrics["files"]["reconstruction.wav"]["psnr_db"] == pytest.approx(on_file, abs=1e-9)
    # Float32 keeps what the model gives, to far below its error.
    assert on_file == pytest.approx(metrics["psnr_db"], abs=0.05)


def test_fit_volume_writes_array_and_slices(tmp_path):
    volume = np.random.RandomState(0).random_sample((6, 7, 8))
    np.save(tmp_path / "vol.npy", volume)
    out = tmp_path / "o"
    assert (
        main(
            ["fit", str(tmp_path / "vol.npy"), *TINY, "--steps", "3", "--quiet", "--out", str(out)]
        )
        == 0
    )
    assert np.load(out / "reconstruction.npy").shape == (6, 7, 8)
    assert np.load(out / "superres_2x.npy").shape == (12, 14, 16)
    assert (out / "slices.png").stat().st_size > 0
    assert (out / "superres_2x_vs_trilinear.png").stat().st_size > 0  # a baseline beside it
    files = json.loads((out / "metrics.json").read_text())["files"]
    assert files["reconstruction.npy"]["psnr_db"] == pytest.approx(
        skinr.metrics.psnr(volume, np.load(out / "reconstruction.npy"), data_range=np.ptp(volume))
    )


def test_fit_video_writes_frames(tmp_path):
    pytest.importorskip("av")
    video = np.random.RandomState(0).random_sample((4, 10, 12, 3))
    skinr.io.write(tmp_path / "clip.mp4", video, kind="video", spacing=(0.1, 1, 1))
    out = tmp_path / "o"
    assert (
        main(
            [
                "fit",
                str(tmp_path / "clip.mp4"),
                *TINY,
                "--steps",
                "3",
                "--quiet",
                "--scale",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["signal"]["kind"] == "video" and metrics["signal"]["units"][0] == "s"
    assert skinr.io.read(out / "reconstruction.mp4").values.shape[:3] == (4, 10, 12)
    assert (out / "frames.png").stat().st_size > 0
    assert (out / "superres_1x_vs_trilinear.png").stat().st_size > 0


def test_video_files_hold_exactly_their_8_bit_frames(tmp_path):
    """MP4 is written losslessly (RGB H.264 at constant rate factor 0): reading it back
    gives the frames' 8-bit values exactly (lossy H.264 cost 25 dB of a 64 dB fit),
    at odd sizes too."""
    pytest.importorskip("av")
    frames = np.random.RandomState(0).randint(0, 256, (3, 9, 11, 3)) / 255.0
    path = skinr.io.write(tmp_path / "v.mp4", frames, kind="video")
    np.testing.assert_array_equal(np.round(skinr.io.read(path).values * 255), frames * 255)


def test_render_a_saved_model(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["fit", "--size", "16", *TINY, "--steps", "5", "--quiet", "--out", str(out)]) == 0
    model = str(out / "model.skinr")
    assert main(["render", model, "--scale", "3", "--out", str(tmp_path / "r.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "r.png")).shape == (48, 48)
    assert main(["render", model, "--shape", "20,30", "--out", str(tmp_path / "s.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "s.png")).shape == (20, 30)
    # A box of the pixel frame: the top-left quarter at 2x is 16 x 16.
    assert (
        main(
            ["render", model, "--box", "0:8,0:8", "--scale", "2", "--out", str(tmp_path / "b.png")]
        )
        == 0
    )
    corner = np.asarray(Image.open(tmp_path / "b.png"), dtype=float)
    whole = np.asarray(Image.open(tmp_path / "r.png"), dtype=float)
    assert corner.shape == (16, 16)
    full_2x = skinr.load(model).render((32, 32))[:16, :16]
    assert np.abs(corner / 255 - np.clip(full_2x, 0, 1)).max() < 1 / 255 + 1e-6
    assert whole.std() > 0
    capsys.readouterr()
    assert main(["render", model, "--box", "0:8"]) == 2
    assert "2 ranges" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "none.skinr")]) == 2


def test_compare_writes_table_csv_and_montage(tmp_path, capsys):
    out = tmp_path / "c"
    assert (
        main(
            ["compare", "--models", "SIREN,Grid", "--steps", "5", "--size", "16", "--out", str(out)]
        )
        == 0
    )
    table = (out / "comparison.md").read_text()
    assert re.search(r"^\| SIREN \|", table, re.M) and re.search(r"^\| Grid \|", table, re.M)
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    models = ["SIREN", "Grid"]
    interpolations = ["linear interpolation", "cubic interpolation"]
    assert [r["model"] for r in rows[:4]] == models + interpolations
    assert all(float(r["held_out_psnr_db"]) > 0 for r in rows[:4])
    if importlib.util.find_spec("imagecodecs") is not None:
        # The photo in as many bytes as the smallest model's weights, beside them.
        smallest = min(rows[:2], key=lambda r: int(r["params"]))
        assert rows[4]["model"] == (
            f"JPEG 2000 at {smallest['model']}'s {4 * int(smallest['params']):,} bytes"
        )
        assert float(rows[4]["psnr_db"]) > 10
    else:
        assert len(rows) == 4
    assert all(int(r["steps"]) == 5 for r in rows[:2])
    # The verdict under the table, and each model's progress as it ran.
    assert "Too few steps to judge: SIREN (5 steps), Grid (5 steps)" in table
    err = capsys.readouterr().err
    assert "[1/2] SIREN: 5 steps twice" in err and re.search(r"\[2/2\] Grid: .* held out", err)
    assert (out / "montage.png").stat().st_size > 0
    assert main(["compare", "--models", "SIREN,Nope", "--out", str(out)]) == 2
    assert "unknown model 'Nope'" in capsys.readouterr().err


def test_compare_function_returns_the_table():
    image = skinr.datasets.camera(size=16)
    table = skinr.compare(image, ["Grid", skinr.SIREN(width=8, depth=1)], steps=4)
    assert [row["model"] for row in table.rows[:2]] == ["Grid", "SIREN"]
    assert set(table.rows[0]) == set(skinr.comparison.COLUMNS)
    assert table.renders["Grid"].shape == (64, 64)
    # The reported PSNR is the reconstruction's against the image.
    peak = np.ptp(image)  # the signal's range, as data_range=None says
    expected = skinr.metrics.psnr(image, table.reconstructions["SIREN"], data_range=peak)
    assert table.rows[1]["psnr_db"] == pytest.approx(expected)
    assert table.to_csv().splitlines()[0] == ",".join(skinr.comparison.COLUMNS)


def test_compare_scores_interpolation_of_the_same_samples():
    """The interpolation rows predict the held-out samples (every index but the
    even ones) from the kept ones as scipy does, and the verdict weighs the models
    against the better of them."""
    from scipy.interpolate import RegularGridInterpolator

    image = skinr.datasets.camera(size=16)
    table = skinr.compare(image, ["Grid"], steps=120)
    rows = {row["model"]: row for row in table.rows}
    kept = image[::2, ::2]
    axes = (np.arange(0, 16, 2.0),) * 2
    grid = np.stack(np.meshgrid(np.arange(16.0), np.arange(16.0), indexing="ij"), -1)
    linear = RegularGridInterpolator(axes, kept, bounds_error=False, fill_value=None)(grid)
    held = np.ones((16, 16), bool)
    held[::2, ::2] = False
    expected = skinr.metrics.psnr(image[held], linear[held], data_range=np.ptp(image))
    assert rows["linear interpolation"]["held_out_psnr_db"] == pytest.approx(expected)
    base = max(
        rows["linear interpolation"],
        rows["cubic interpolation"],
        key=lambda row: row["held_out_psnr_db"],
    )
    gap = rows["Grid"]["held_out_psnr_db"] - base["held_out_psnr_db"]
    verdict = table.verdict()
    if gap > 0:
        assert (
            verdict.startswith("Between samples, Grid predicts best") and f"{gap:+.2f}" in verdict
        )
    else:
        assert verdict.startswith(f"No model predicts between samples better than {base['model']}")
    assert "Too few steps" not in verdict  # 120 steps


def test_models_lists_and_describes(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in skinr.ESTIMATORS)
    assert main(["models", "siren"]) == 0
    described = capsys.readouterr().out
    assert "first_omega_0 = 'auto'" in described and "max_time = None" in described
    # Every parameter has its help text from the docstring.
    assert all(line.strip() for line in described.splitlines()[2::2])


def test_python_dash_m_skinr():
    result = subprocess.run(
        [sys.executable, "-m", "skinr", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"skinr {skinr.__version__}"


@pytest.mark.slow
def test_main_job_reaches_40_db_within_a_minute(tmp_path):
    """The README's first command: the shipped camera, default model and steps."""
    result = subprocess.run(
        [sys.executable, "-m", "skinr", "fit", "--out", str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["psnr_db"] >= 40


def test_benchmark_runner_quick_mode():
    runner = runpy.run_path(str(ROOT / "benchmarks" / "run.py"))
    rows = runner["main"](["--quick", "--no-write"])
    assert [r["estimator"].split()[0] for r in rows] == ["SIREN", "SIREN", "FourierFeatureMLP"]
    assert rows[0]["params"] == rows[1]["params"]
    assert abs(rows[0]["psnr"] - rows[1]["psnr"]) < 0.5


@pytest.mark.parametrize(
    "script",
    [
        "ensemble.py",
        "localglobal.py",
        "loe.py",
        "multihead.py",
        "sl2a.py",
        "memory.py",
        "native.py",
        "offgrid.py",
        "offgrid.py --sweep WIRE omega_0,sigma_0 4/2 3/1.5 --images camera",
        "main_job.py",
        "representations.py",
        "inverse.py --models HashGrid --tv",
        "gpu.py --device cpu",
    ],
)
def test_benchmark_scripts_quick_mode(script, capsys, monkeypatch):
    """The architecture benchmarks run end to end in their smoke-test mode (writes
    nothing). In this process: a fresh interpreter per script cost ~8 s of imports."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as when run as a script
    script, *options = script.split()
    main = runpy.run_path(str(ROOT / "benchmarks" / script), run_name="benchmark")["main"]
    main(["--quick", *options])
    printed = capsys.readouterr().out
    assert re.search(r"^\| .* \|$", printed, re.M)  # printed its results table


def test_representations_benchmark_stops_a_fit_at_its_seconds(monkeypatch):
    """The equal-seconds benchmark ends a fit by interrupting it; a fit passes the
    interrupt on (keeping its weights), which must end that fit, not the run."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    timed_fit = runpy.run_path(str(ROOT / "benchmarks" / "representations.py"))["timed_fit"]
    X, y = skinr.signals.to_coords(np.random.RandomState(0).random_sample((16, 16)))
    model = skinr.SIREN(width=16, depth=1, max_iter=100_000, random_state=0)
    stamps, _ = timed_fit(model, X, y, seconds=0.2)
    assert 0 < stamps[-1, 0] < 100_000 and stamps[-1, 1] >= 0.2
    assert model.predict(X).shape == (256,)
    # A stop the benchmark did not ask for still ends the run.
    monkeypatch.setattr(
        skinr.base.BaseINR,
        "_training_loop",
        staticmethod(lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)),
    )
    with pytest.raises(KeyboardInterrupt):
        timed_fit(skinr.SIREN(width=16, depth=1, max_iter=3), X, y, seconds=10.0)


def test_fit_nifti_keeps_the_voxel_size(tmp_path):
    pytest.importorskip("nibabel")
    volume = np.random.RandomState(0).random_sample((5, 6, 7))
    skinr.io.write(tmp_path / "brain.nii.gz", volume, kind="volume", spacing=(0.5, 0.5, 2.0))
    out = tmp_path / "o"
    argv = ["fit", str(tmp_path / "brain.nii.gz"), *TINY, "--steps", "3", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["signal"]["spacing"] == [0.5, 0.5, 2.0] and metrics["signal"]["units"] == ["mm"] * 3
    )
    back = skinr.io.read(out / "reconstruction.nii.gz")
    assert back.values.shape == (5, 6, 7) and back.spacing == (0.5, 0.5, 2.0)


def test_ctrl_c_writes_what_was_learned(tmp_path, capsys, monkeypatch):
    """Ctrl-C during a CLI fit keeps the weights (the loop stops between steps) and the
    CLI writes every output from them, says so in one line, and exits with 130."""
    from skinr._core.loop import train

    def interrupted_at_step_5(*args, **kwargs):
        def progress(step, loss):
            if step >= 5:
                raise KeyboardInterrupt  # as the loop's Ctrl-C flag does

        if kwargs["max_iter"] == 200:  # the fit, not the probe that times a step
            kwargs["progress"] = progress
        return train(*args, **kwargs)

    monkeypatch.setattr(skinr.base.BaseINR, "_training_loop", staticmethod(interrupted_at_step_5))
    out = tmp_path / "o"
    argv = ["fit", "--size", "16", *TINY, "--steps", "200", "--quiet", "--out", str(out)]
    assert main(argv) == 130
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["steps"] == 5
    assert skinr.load(out / "model.skinr").n_iter_ == 5
    assert (out / "comparison.png").is_file() and (out / "history.csv").is_file()
    err = capsys.readouterr().err
    assert "interrupted after 5 of 200 steps; writing what was learned" in err
    assert "Warning" not in err and ".py:" not in err  # no raw Python warning


def test_a_long_default_fit_is_announced_and_bounded(tmp_path, capsys, monkeypatch):
    """Before training, a fit says what it will cost; one given no budget that would
    outrun DEFAULT_MAX_SECONDS trains for that long instead, and says so."""
    import skinr.cli as cli
    import skinr.comparison

    monkeypatch.setattr(skinr.comparison, "step_seconds", lambda *a: 0.05)
    monkeypatch.setattr(cli, "ANNOUNCED_SECONDS", 1.0)
    monkeypatch.setattr(cli, "DEFAULT_MAX_SECONDS", 0.5)
    out = tmp_path / "o"
    assert main(["fit", "--size", "16", *TINY, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "SIREN's 1,000 steps x 0.05 s = 50 s on this machine: training for 0.5 s" in err
    params = json.loads((out / "metrics.json").read_text())["params"]
    assert params["max_time"] == 0.5
    # Asked for by --steps, the steps run; the cost is said first.
    out2 = tmp_path / "o2"
    assert main(["fit", "--size", "16", *TINY, "--steps", "30", "--out", str(out2)]) == 0
    assert "Expected: 30 steps x 0.05 s = 1.5 s on this machine" in capsys.readouterr().err
    assert json.loads((out2 / "metrics.json").read_text())["steps"] == 30
