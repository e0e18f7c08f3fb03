"""Sample signals that load offline and deterministically.

Images come back as float64 arrays in [0, 1]; turn any of them into coordinates and
values with :func:`skinr.signals.to_coords`.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "astronaut",
    "audio_clip",
    "camera",
    "ellipse_phantoms",
    "occupancy_volume",
    "perlin_noise",
    "resize",
]


def resize(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize an image to ``shape`` with anti-aliasing.

    Integer downscaling averages blocks of pixels (area interpolation); other sizes
    follow scikit-image's ``resize(..., anti_aliasing=True)`` (a Gaussian prefilter
    when shrinking, then linear interpolation at pixel centres), computed with SciPy so
    that the result is the same whether or not scikit-image is installed.

    Parameters
    ----------
    image : array-like of shape (H, W) or (H, W, C)
        The image.
    shape : (int, int)
        Target height and width.

    Returns
    -------
    ndarray of shape (height, width) or (height, width, C)
        The resized image, float64.
    """
    image = np.asarray(image, dtype=np.float64)
    height, width = (int(s) for s in shape)
    h_in, w_in = image.shape[:2]
    if (height, width) == (h_in, w_in):
        return image.copy()
    if h_in % height == 0 and w_in % width == 0:
        fy, fx = h_in // height, w_in // width
        blocks = image.reshape(height, fy, width, fx, *image.shape[2:])
        return blocks.mean(axis=(1, 3))
    # scikit-image's recipe (resize with anti_aliasing=True, order 1), written with SciPy
    # so that the result does not depend on which extras are installed: a Gaussian of
    # sigma (factor - 1) / 2 along each shrunk axis, then linear interpolation at the
    # output pixels' centres.
    from scipy.ndimage import gaussian_filter, map_coordinates

    factors = (h_in / height, w_in / width)
    sigma = [max(0.0, (f - 1) / 2) for f in factors] + [0.0] * (image.ndim - 2)
    smoothed = gaussian_filter(image, sigma, mode="mirror") if any(sigma) else image
    rows = (np.arange(height) + 0.5) * factors[0] - 0.5
    cols = (np.arange(width) + 0.5) * factors[1] - 0.5
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")

    def sample(plane: np.ndarray) -> np.ndarray:
        return map_coordinates(plane, [grid_rows, grid_cols], order=1, mode="mirror")

    if image.ndim == 2:
        return sample(smoothed)
    flat = smoothed.reshape(h_in, w_in, -1)
    planes = [sample(flat[..., c]) for c in range(flat.shape[-1])]
    return np.stack(planes, axis=-1).reshape(height, width, *image.shape[2:])


def camera(size: int | None = None) -> np.ndarray:
    """The 512 x 512 grayscale "cameraman" photograph, shipped with skinr.

    It is scikit-image's ``data.camera()`` since 0.18 (CC0, Lav Varshney); papers
    from before October 2020 used an older, different photo.

    Parameters
    ----------
    size : int or None, default=None
        Side length to downscale to (e.g. 256); None keeps 512.

    Returns
    -------
    ndarray of shape (size, size), float64 in [0, 1]
        The grayscale image.
    """
    with resources.files("skinr").joinpath("data/camera.npz").open("rb") as fh:
        image = np.load(fh)["image"].astype(np.float64) / 255.0
    return image if size is None else resize(image, (size, size))


def astronaut(size: int | None = None) -> np.ndarray:
    """Load scikit-image's 512 x 512 RGB astronaut photograph (public domain).

    Parameters
    ----------
    size : int or None, default=None
        Side length to downscale to; None keeps 512.

    Returns
    -------
    ndarray of shape (size, size, 3), float64 in [0, 1]
        The RGB image.
    """
    try:
        from skimage import data
    except ImportError as exc:
        raise ImportError(
            "skinr.datasets.astronaut needs scikit-image; install it with "
            "pip install 'skinr[data]'."
        ) from exc
    image = data.astronaut().astype(np.float64) / 255.0
    return image if size is None else resize(image, (size, size))


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6 - 15) + 10)


def _perlin_layer(shape: tuple[int, int], frequency: int, rng: np.random.RandomState) -> np.ndarray:
    angles = rng.uniform(0, 2 * np.pi, size=(frequency + 1, frequency + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    rows = np.linspace(0, frequency, shape[0], endpoint=False)
    cols = np.linspace(0, frequency, shape[1], endpoint=False)
    ri, ci = rows.astype(int), cols.astype(int)
    rf, cf = rows - ri, cols - ci

    def corner(dr: int, dc: int) -> np.ndarray:
        g = gradients[(ri + dr)[:, None], (ci + dc)[None, :]]
        return g[..., 0] * (rf - dr)[:, None] + g[..., 1] * (cf - dc)[None, :]

    u, v = _fade(rf)[:, None], _fade(cf)[None, :]
    top = corner(0, 0) * (1 - v) + corner(0, 1) * v
    bottom = corner(1, 0) * (1 - v) + corner(1, 1) * v
    return top * (1 - u) + bottom * u


def perlin_noise(
    shape: Sequence[int] = (256, 256),
    frequency: int = 8,
    *,
    octaves: int = 1,
    persistence: float = 0.5,
    random_state=None,
) -> np.ndarray:
    """A 2-D Perlin gradient-noise image with a controlled frequency content.

    Parameters
    ----------
    shape : (int, int), default=(256, 256)
        Image size.
    frequency : int, default=8
        Lattice cells per side of the first octave: higher means finer detail
        (MH-ReLU's spectral-bias test sweeps 1, 2, 4, ..., 128).
    octaves : int, default=1
        Layers summed, each at twice the previous frequency and ``persistence``
        times its amplitude.
    persistence : float, default=0.5
        Amplitude ratio between successive octaves.
    random_state : int, RandomState instance or None, default=None
        Seeds the lattice gradients.

    Returns
    -------
    ndarray of the given shape, float64
        The noise, min-max scaled to [0, 1].
    """
    rng = check_random_state(random_state)
    shape = (int(shape[0]), int(shape[1]))
    if frequency < 1 or octaves < 1:
        raise ValueError(f"frequency and octaves must be >= 1; got {frequency} and {octaves}.")
    noise = np.zeros(shape)
    for octave in range(octaves):
        noise += persistence**octave * _perlin_layer(shape, frequency * 2**octave, rng)
    span = noise.max() - noise.min()
    return (noise - noise.min()) / span if span > 0 else np.zeros(shape)


def ellipse_phantoms(
    n: int, size: int = 128, *, n_ellipses: int = 10, random_state=None
) -> np.ndarray:
    """Random CT phantoms in the manner of Shepp and Logan's: a bright skull, a darker
    brain inside it, and ``n_ellipses`` smaller ellipses of random place, shape, angle
    and contrast added inside the brain.

    A collection to learn a CT prior from (:class:`skinr.meta.LearnedInit`) and to
    test one on: every phantom is drawn independently, so a held-out set is the
    same call with another seed.

    Parameters
    ----------
    n : int
        Phantoms to draw.
    size : int, default=128
        Pixels per side; each pixel holds the value at its centre.
    n_ellipses : int, default=10
        Inner ellipses per phantom.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    Returns
    -------
    ndarray of shape (n, size, size), float64
        Values in [0, 1], zero outside the skull.
    """
    if int(n) < 1 or int(size) < 2 or int(n_ellipses) < 0:
        raise ValueError(
            f"n >= 1, size >= 2 and n_ellipses >= 0 are needed; got {n}, {size}, {n_ellipses}."
        )
    rng = check_random_state(random_state)
    centres = (np.arange(size) + 0.5) / size * 2 - 1
    rows, cols = np.meshgrid(-centres, centres, indexing="ij")
    phantoms = np.empty((int(n), size, size))

    def inside(cx, cy, a, b, angle):
        c, s = np.cos(angle), np.sin(angle)
        u, v = (cols - cx) * c + (rows - cy) * s, -(cols - cx) * s + (rows - cy) * c
        return (u / a) ** 2 + (v / b) ** 2 <= 1

    for k in range(int(n)):
        a, b = rng.uniform(0.6, 0.8), rng.uniform(0.75, 0.95)
        angle = rng.uniform(-0.3, 0.3)
        skull = inside(0, 0, a, b, angle)
        brain = inside(0, rng.uniform(-0.03, 0), 0.92 * a, 0.92 * b, angle)
        image = 0.9 * skull - rng.uniform(0.5, 0.7) * brain
        for _ in range(int(n_ellipses)):
            radius, theta = rng.uniform(0, 0.6), rng.uniform(0, 2 * np.pi)
            cx, cy = radius * a * np.cos(theta), radius * b * np.sin(theta)
            axes = rng.uniform(0.03, 0.25, size=2)
            shape = inside(cx, cy, axes[0], axes[1], rng.uniform(0, np.pi)) & brain
            image = image + rng.uniform(-0.15, 0.3) * shape
        phantoms[k] = np.clip(image, 0.0, 1.0)
    return phantoms


def audio_clip(
    n_samples: int = 16384, *, sample_rate: int = 16000, random_state=None
) -> np.ndarray:
    """A synthetic mono clip: a chirp and a decaying harmonic tone, in [-1, 1].

    Parameters
    ----------
    n_samples : int, default=16384
        Length in samples.
    sample_rate : int, default=16000
        Samples per second (sets the pitch of the content).
    random_state : int, RandomState instance or None, default=None
        Seeds the phases and a little noise.

    Returns
    -------
    ndarray of shape (n_samples,), float64
        The clip, peak-normalised to [-1, 1].
    """
    rng = check_random_state(random_state)
    t = np.arange(n_samples) / sample_rate
    duration = n_samples / sample_rate
    chirp = np.sin(2 * np.pi * (110 * t + (880 - 110) * t**2 / (2 * duration)))
    tone = sum(np.sin(2 * np.pi * 220 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    clip = 0.5 * chirp + 0.4 * np.exp(-3 * t / duration) * tone
    clip += 0.01 * rng.standard_normal(n_samples)
    return clip / np.abs(clip).max()


def occupancy_volume(size: int = 32, shape: str = "torus") -> np.ndarray:
    """A binary occupancy grid of a simple solid in [-1, 1]^3.

    Parameters
    ----------
    size : int, default=32
        Voxels per side.
    shape : {"torus", "sphere"}, default="torus"
        The solid: a torus (radii 0.6 and 0.25, axis along the first dimension) or a
        sphere of radius 0.7.

    Returns
    -------
    ndarray of shape (size, size, size), float64
        1 inside the solid and 0 outside.
    """
    axis = np.linspace(-1, 1, size)
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    if shape == "torus":
        inside = (np.hypot(y, x) - 0.6) ** 2 + z**2 < 0.25**2
    elif shape == "sphere":
        inside = z**2 + y**2 + x**2 < 0.7**2
    else:
        raise ValueError(f"shape={shape!r} is not one of 'torus', 'sphere'.")
    return inside.astype(np.float64)
