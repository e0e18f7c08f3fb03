"""The files ``skinr fit`` and ``skinr compare`` write for a person to look at.

One function per kind of signal writes the reconstruction in the signal's own format
(PNG, WAV, MP4/GIF, .npy/NIfTI), the super-resolution render, and one picture that is
read at a glance: original, reconstruction and absolute error side by side (images,
frames of a video, middle slices of a volume; waveforms and spectrograms of audio).
matplotlib is imported here only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._core.loop import loss_psnr
from ..io import Signal, write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show(ax, image: np.ndarray, title: str) -> None:
    ax.imshow(np.clip(image, 0, 1), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def _error_panel(fig, ax, error: np.ndarray, title: str) -> None:
    """The error, on its own scale, with its colour bar."""
    shown = ax.imshow(error, cmap="magma", vmin=0)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    fig.colorbar(shown, ax=ax, fraction=0.046)


def _error_image(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    error = np.abs(original - reconstruction)
    return error.mean(axis=-1) if error.ndim == 3 else error


def side_by_side(
    path: Path, pairs: list[tuple[str, np.ndarray, np.ndarray]], peak: float, value_range=(0.0, 1.0)
) -> None:
    """Rows of original | reconstruction | |error| (with the error's own colour bar)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(pairs), 3, figsize=(10, 3.4 * len(pairs)), squeeze=False)
    low, high = value_range
    for row, (label, original, reconstruction) in zip(axes, pairs, strict=True):
        error = _error_image(original, reconstruction)
        scale = lambda a: (a - low) / (high - low)  # noqa: E731
        _show(row[0], scale(original), f"original {label}")
        _show(row[1], scale(reconstruction), f"reconstruction {label}")
        _error_panel(fig, row[2], error, f"|error| (max {error.max():.3g}, peak {peak:g})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bicubic(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pillow's bicubic resize of each channel (the pixel-centre frame)."""
    from PIL import Image

    planes = image[..., None] if image.ndim == 2 else image
    resized = [
        np.asarray(
            Image.fromarray(planes[..., c].astype(np.float32), mode="F").resize(
                (shape[1], shape[0]), Image.BICUBIC
            ),
            dtype=np.float64,
        )
        for c in range(planes.shape[-1])
    ]
    stacked = np.stack(resized, axis=-1)
    return stacked[..., 0] if image.ndim == 2 else stacked


def superres_figure(path: Path, image: np.ndarray, rendered: np.ndarray, scale: int) -> None:
    """The render beside bicubic from the same pixels: the whole image and a centre
    crop of a quarter of each side, where differences show."""
    plt = _pyplot()
    cubic = np.clip(bicubic(image, rendered.shape[:2]), 0, 1)
    height, width = rendered.shape[:2]
    crop = (slice(3 * height // 8, 5 * height // 8), slice(3 * width // 8, 5 * width // 8))
    fig, axes = plt.subplots(2, 2, figsize=(9, 9))
    _show(axes[0, 0], rendered, f"skinr render {scale}x")
    _show(axes[0, 1], cubic, f"bicubic {scale}x (Pillow)")
    _show(axes[1, 0], rendered[crop], "render, centre crop")
    _show(axes[1, 1], cubic[crop], "bicubic, centre crop")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(
    out: Path,
    signal: Signal,
    reconstruction: np.ndarray,
    rendered: np.ndarray,
    scale: int,
    peak: float,
) -> list[Path]:
    """Write what ``skinr fit`` shows for ``signal``'s kind; return the paths."""
    writer = {"image": _image, "audio": _audio, "video": _video, "volume": _volume}
    return writer[signal.kind](out, signal, reconstruction, rendered, scale, peak)


def _image(out, signal, reconstruction, rendered, scale, peak):
    paths = [
        write(out / "reconstruction.png", reconstruction, kind="image"),
        write(out / f"superres_{scale}x.png", rendered, kind="image"),
    ]
    side_by_side(out / "comparison.png", [("", signal.values, reconstruction)], peak)
    superres_figure(out / f"superres_{scale}x_vs_bicubic.png", reconstruction, rendered, scale)
    return [*paths, out / "comparison.png", out / f"superres_{scale}x_vs_bicubic.png"]


def interpolated(values: np.ndarray, factor: int, order: int, has_channels: bool) -> np.ndarray:
    """``values`` resampled ``factor`` times finer along each sample axis by a spline
    of ``order`` (1: linear, 3: cubic), in the pixel-centre frame a render uses."""
    from scipy.ndimage import zoom

    factors = (factor,) * (values.ndim - has_channels) + (1,) * has_channels
    return zoom(values, factors, order=order, mode="nearest", grid_mode=True)


def _audio(out, signal, reconstruction, rendered, scale, peak):
    spacing = signal.spacing
    # Written at the input's sample type (a float WAV stays float).
    precision = signal.dtype or None
    paths = [
        write(
            out / "reconstruction.wav",
            reconstruction,
            kind="audio",
            spacing=spacing,
            precision=precision,
        ),
        write(
            out / f"superres_{scale}x.wav",
            rendered,
            kind="audio",
            spacing=(spacing[0] / scale,),
            precision=precision,
        ),
    ]
    plt = _pyplot()
    rate = 1.0 / spacing[0]
    mono = lambda a: a.mean(axis=-1) if a.ndim == 2 else a  # noqa: E731
    original, fitted = mono(signal.values), mono(reconstruction)
    seconds = np.arange(len(original)) * spacing[0]
    # Windows of ~1/8 of the clip (at most 512 samples), so short clips get several.
    window = int(min(512, 2 ** max(4, int(np.log2(max(len(original) // 8, 16))))))
    spectrogram = dict(Fs=rate, NFFT=window, noverlap=3 * window // 4, cmap="magma")
    fig, axes = plt.subplots(3, 2, figsize=(11, 8))
    axes[0, 0].plot(seconds, original, lw=0.5)
    axes[0, 0].set_title("original waveform", fontsize=9)
    axes[0, 1].plot(seconds, fitted, lw=0.5, color="C1")
    axes[0, 1].set_title("reconstruction waveform", fontsize=9)
    for ax, values, title in (
        (axes[1, 0], original, "original"),
        (axes[1, 1], fitted, "reconstruction"),
        (axes[2, 1], original - fitted, "error"),
    ):
        # A silent window has zero power: its decibels are -inf, drawn as the floor.
        with np.errstate(divide="ignore"):
            *_, image = ax.specgram(values, **spectrogram)
        fig.colorbar(image, ax=ax, label="dB")
        ax.set_title(f"{title} spectrogram", fontsize=9)
        ax.set_ylabel("Hz")
    axes[2, 0].plot(seconds, np.abs(original - fitted), lw=0.5, color="C3")
    axes[2, 0].set_title(f"|error| (peak {peak:g})", fontsize=9)
    axes[2, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(out / "waveform.png", dpi=110)
    plt.close(fig)
    _audio_render_figure(out / f"superres_{scale}x_vs_cubic.png", signal, rendered, scale)
    return [*paths, out / "waveform.png", out / f"superres_{scale}x_vs_cubic.png"]


def _audio_render_figure(path, signal, rendered, scale) -> None:
    """A stretch of the render beside linear and cubic interpolation of the samples."""
    plt = _pyplot()
    mono = lambda a: a.mean(axis=-1) if a.ndim == 2 else a  # noqa: E731
    original = mono(signal.values)
    render = mono(rendered)
    baselines = {
        order_name: mono(interpolated(signal.values, scale, order, signal.has_channels))
        for order_name, order in (("linear", 1), ("cubic", 3))
    }
    # 64 original samples from the middle: enough to see between them.
    start = max(0, len(original) // 2 - 32)
    stop = min(len(original), start + 64)
    dt = signal.spacing[0]
    fine = (np.arange(start * scale, stop * scale) + 0.5) * dt / scale - dt / 2
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.plot(np.arange(start, stop) * dt, original[start:stop], "k.", ms=4, label="samples")
    for name, values in baselines.items():
        ax.plot(fine, values[start * scale : stop * scale], lw=0.8, label=f"{name} interpolation")
    ax.plot(fine, render[start * scale : stop * scale], lw=1.0, label=f"render {scale}x")
    ax.set(xlabel="seconds", title="between the samples: the render and interpolation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _video(out, signal, reconstruction, rendered, scale, peak):
    try:
        import av  # noqa: F401

        suffix = ".mp4"
    except ImportError:
        suffix = ".gif"
    paths = [
        write(
            out / f"reconstruction{suffix}", reconstruction, kind="video", spacing=signal.spacing
        ),
        write(
            out / f"superres_{scale}x{suffix}",
            rendered,
            kind="video",
            spacing=(signal.spacing[0] / scale, 1.0, 1.0),
        ),
    ]
    frames = sorted({0, len(signal.values) // 2, len(signal.values) - 1})
    pairs = [(f"frame {t}", signal.values[t], reconstruction[t]) for t in frames]
    side_by_side(out / "frames.png", pairs, peak)
    vs = _render_vs_interpolation(out, signal, rendered, scale, "frame")
    return [*paths, out / "frames.png", vs]


def _render_vs_interpolation(out: Path, signal, rendered, scale: int, axis_name: str) -> Path:
    """The middle slice along the first axis of a 3-D render beside trilinear and
    tricubic interpolation of the signal at the same resolution: the baseline a user
    already has. Returns the picture's path."""
    path = out / f"superres_{scale}x_vs_trilinear.png"
    middle = signal.values.shape[0] // 2
    label = f"{axis_name} {middle}"

    def take(values):
        return values[middle * scale]

    plt = _pyplot()
    panels = [(f"render {scale}x, {label}", take(rendered))]
    for name, order in (("trilinear", 1), ("tricubic", 3)):
        baseline = interpolated(signal.values, scale, order, signal.has_channels)
        panels.append((f"{name} {scale}x", take(baseline)))
    low, high = float(signal.values.min()), float(signal.values.max())
    high = high if high > low else low + 1
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.imshow(
            np.clip((image - low) / (high - low), 0, 1),
            cmap=None if image.ndim == 3 else "gray",
            vmin=0,
            vmax=1,
        )
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _volume(out, signal, reconstruction, rendered, scale, peak):
    nifti = signal.source.lower().endswith((".nii", ".nii.gz"))
    name = "reconstruction.nii.gz" if nifti else "reconstruction.npy"
    paths = [
        write(out / name, reconstruction, kind="volume", spacing=signal.spacing),
        write(out / f"superres_{scale}x.npy", rendered, kind="volume"),
    ]
    pairs = []
    for axis, label in enumerate(("axis 0", "axis 1", "axis 2")):
        middle = signal.values.shape[axis] // 2
        take = lambda a, m=middle, k=axis: np.take(a, m, axis=k)  # noqa: E731
        pairs.append((f"{label} slice {middle}", take(signal.values), take(reconstruction)))
    low, high = float(signal.values.min()), float(signal.values.max())
    side_by_side(
        out / "slices.png", pairs, peak, value_range=(low, high if high > low else low + 1)
    )
    vs = _render_vs_interpolation(out, signal, rendered, scale, "slice")
    return [*paths, out / "slices.png", vs]


def plot_curve(path: Path, model, peak: float) -> None:
    """Training loss and PSNR against step and against seconds."""
    plt = _pyplot()
    history = model.history_
    loss = np.asarray(history["loss"])
    train_psnr = loss_psnr(loss, model.y_scale_, peak)
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.semilogy(history["step"], loss)
    ax_loss.set(xlabel="step", ylabel="training loss (MSE, targets in [-1, 1])")
    ax_psnr.plot(history["seconds"], train_psnr)
    ax_psnr.set(xlabel="seconds of training", ylabel="training PSNR (dB)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def montage(path: Path, table) -> None:
    """Each model's reconstruction and a centre crop of its render, one row per model,
    with the original and bicubic in the first row."""
    plt = _pyplot()
    original = table.signal
    names = list(table.reconstructions)
    any_render = next(iter(table.renders.values()))
    height, width = any_render.shape[:2]
    crop = (slice(3 * height // 8, 5 * height // 8), slice(3 * width // 8, 5 * width // 8))
    rows = [
        (
            "original",
            original,
            np.clip(bicubic(original, (height, width)), 0, 1),
            f"bicubic {table.scale}x, crop",
        )
    ]
    # Prediction between samples where it was measured: a fit's own PSNR rewards
    # memorising the samples.
    labels = {
        row["model"]: f"{row['model']} (fit {row['psnr_db']:.2f} dB)"
        if row["held_out_psnr_db"] is None
        else f"{row['model']} (held out {row['held_out_psnr_db']:.2f} dB)"
        for row in table.rows
    }
    rows += [
        (
            labels[name],
            table.reconstructions[name],
            table.renders[name],
            f"{name} {table.scale}x, crop",
        )
        for name in names
    ]
    fig, axes = plt.subplots(len(rows), 2, figsize=(7, 3.4 * len(rows)), squeeze=False)
    for (label, image, render, render_label), (left, right) in zip(rows, axes, strict=True):
        _show(left, image, label)
        _show(right, render[crop], render_label)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def codec_figure(image: np.ndarray, decoded: np.ndarray, result: dict, path: Path) -> None:
    """original | decoded (with its rate and PSNR) | |error| with a colour bar."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    _show(axes[0], image, f"original {image.shape[1]} x {image.shape[0]}")
    title = f"decoded: {result['bytes']:,} bytes, {result['bpp']:.3f} bpp, {result['psnr']:.2f} dB"
    if result.get("jpeg2000_psnr_same_bytes") is not None:
        title += f"\n(JPEG 2000 at that size: {result['jpeg2000_psnr_same_bytes']:.2f} dB)"
    _show(axes[1], decoded, title)
    error = _error_image(image, decoded)
    _error_panel(fig, axes[2], error, f"|error| (max {error.max():.3g})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
