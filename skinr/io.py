"""Read and write signal files: images, audio, video and volumes, with their units.

:func:`read` gives a :class:`Signal`: the samples as floats (images in [0, 1], audio in
[-1, 1], with scikit-image's and soundfile's conventions for integer types), what kind
of signal it is, and the spacing of its samples along each axis in real units (seconds
for audio and video frames, millimetres for a NIfTI volume, pixels otherwise), so that
:meth:`Signal.to_coords` gives coordinates a user can read. :func:`write` is the
inverse. Every reader checks the size a file declares against ``max_samples`` before
it decodes anything, so a small file cannot make skinr allocate what it claims.

Which library reads what (extras of ``pip install "skinr[io]"``):

========================  ======================================  =================
format                    reader                                  extra needed
========================  ======================================  =================
PNG, JPEG, BMP, GIF, ...  Pillow (EXIF orientation applied)       ``pillow``
TIFF (images and stacks)  tifffile                                ``tifffile``
WAV                       soundfile, else SciPy                   none
FLAC, OGG, MP3, ...       soundfile                               ``soundfile``
MP4, AVI, MOV, MKV, WebM  imageio with PyAV                       ``imageio``, ``av``
.npy, .npz                NumPy (``allow_pickle=False``)          none
NIfTI (.nii, .nii.gz)     nibabel (voxel size from the header)    ``nibabel``
========================  ======================================  =================
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._core.files import atomic_target
from .signals import to_coords

__all__ = ["KINDS", "MAX_SAMPLES", "Signal", "SignalFileError", "read", "write"]

#: The kinds of signal :func:`read` recognises, and the unit of their sample axes.
KINDS = {"image": "px", "audio": "s", "video": "s", "volume": "voxel"}

#: Default limit on the values a file may declare (2**28: 2 GiB as float64).
MAX_SAMPLES = 2**28

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".pbm"}
TIFF_SUFFIXES = {".tif", ".tiff"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
ARRAY_SUFFIXES = {".npy", ".npz"}
NIFTI_SUFFIXES = {".nii", ".nii.gz"}


class SignalFileError(ValueError):
    """A file is missing, unreadable, of an unknown format or too large."""


@dataclass(frozen=True)
class Signal:
    """A signal read from a file.

    Parameters
    ----------
    values : ndarray of float64
        Image ``(H, W[, C])`` in [0, 1]; audio ``(T[, C])`` in [-1, 1]; video
        ``(T, H, W[, C])`` in [0, 1]; volume ``(D, H, W)`` as stored.
    kind : {"image", "audio", "video", "volume"}
        What the samples are.
    spacing : tuple of float
        Distance between neighbouring samples along each sample axis, in ``units``.
    units : tuple of str
        Unit of each sample axis: ``"s"`` (time), ``"mm"`` (a NIfTI voxel), ``"px"``,
        ``"voxel"``.
    has_channels : bool
        Whether the last axis of ``values`` holds channels (colour, stereo).
    source : str
        The file it came from.
    dtype : str
        The sample type in the file (``"uint8"``, ``"uint16"``, ``"int16"``, ...).
    """

    values: np.ndarray
    kind: str
    spacing: tuple[float, ...]
    units: tuple[str, ...]
    has_channels: bool
    source: str = ""
    dtype: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        """The sample axes' sizes (without the channel axis)."""
        return self.values.shape[:-1] if self.has_channels else self.values.shape

    @property
    def bounds(self) -> list[tuple[float, float]]:
        """The box the samples tile, per axis, in ``units``: ``(0, n * spacing)``."""
        return [(0.0, n * step) for n, step in zip(self.shape, self.spacing, strict=True)]

    def to_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates in real units (each sample at the centre of its cell) and values.

        Returns
        -------
        X : ndarray of shape (n_samples, n_dims)
            Sample ``i`` of an axis at ``(i + 0.5) * spacing``.
        y : ndarray of shape (n_samples,) or (n_samples, n_channels)
            The values.
        """
        return to_coords(
            self.values,
            channel_axis=-1 if self.has_channels else None,
            bounds=self.bounds,
            pixel_centers=True,
        )


def _check_size(shape, max_samples: int, path: Path) -> None:
    count = int(np.prod([int(side) for side in shape], dtype=object))
    if count > max_samples:
        raise SignalFileError(
            f"{path}: declares {count:,} values ({' x '.join(map(str, shape))}), more than "
            f"max_samples={max_samples:,}; raise max_samples if the file is trusted."
        )


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _need(module: str, extra: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SignalFileError(
            f"reading {what} needs {extra}: pip install {extra} (or skinr[io])"
        ) from None


def _float_samples(array: np.ndarray) -> np.ndarray:
    """Integer samples scaled to [0, 1] (unsigned) or [-1, 1] (signed), as
    scikit-image's ``img_as_float`` does; floats kept."""
    if array.dtype == bool:
        return array.astype(np.float64)
    if array.dtype.kind == "u":
        return array / float(np.iinfo(array.dtype).max)
    if array.dtype.kind == "i":
        return np.maximum(array / float(np.iinfo(array.dtype).max), -1.0)
    return array.astype(np.float64)


def read(path: str | os.PathLike, *, max_samples: int = MAX_SAMPLES) -> Signal:
    """Read a signal file: an image, audio, a video or a volume.

    Parameters
    ----------
    path : str or path-like
        The file; its suffix chooses the reader (see the module's table).
    max_samples : int, default=MAX_SAMPLES
        Refuse files that declare more values than this, before decoding them.

    Returns
    -------
    Signal
        The samples as float64 with their kind, spacing and units.

    Raises
    ------
    SignalFileError
        The file does not exist, its format is unknown, it cannot be decoded, or it
        declares more than ``max_samples`` values.
    """
    path = Path(path)
    if not path.is_file():
        raise SignalFileError(f"{path}: no such file")
    suffix = _suffix(path)
    readers = [
        (IMAGE_SUFFIXES, _read_image),
        (TIFF_SUFFIXES, _read_tiff),
        (AUDIO_SUFFIXES, _read_audio),
        (VIDEO_SUFFIXES, _read_video),
        (ARRAY_SUFFIXES, _read_array),
        (NIFTI_SUFFIXES, _read_nifti),
    ]
    for suffixes, reader in readers:
        if suffix in suffixes:
            try:
                return reader(path, max_samples)
            except SignalFileError:
                raise
            except Exception as error:  # every decoder has its own exceptions
                raise SignalFileError(
                    f"{path}: not a readable {suffix} file ({type(error).__name__}: "
                    f"{str(error)[:200]})"
                ) from None
    known = sorted(set().union(*(suffixes for suffixes, _ in readers)))
    raise SignalFileError(
        f"{path}: unknown signal format {suffix or '(no suffix)'!r}; skinr reads "
        + ", ".join(known)
    )


def _read_image(path: Path, max_samples: int) -> Signal:
    Image = _need("PIL.Image", "pillow", "images")
    from PIL import ImageOps

    with Image.open(path) as image:
        _check_size((*image.size, len(image.getbands())), max_samples, path)
        image = ImageOps.exif_transpose(image)
        if image.mode in ("P", "PA"):
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        if image.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("L" if image.mode == "1" else "RGB")
        if image.mode == "RGB" and _png_bit_depth(path) == 16:
            warnings.warn(
                f"{path}: a 16-bit colour PNG is read at 8 bits (Pillow's limit); save it "
                "as a 16-bit TIFF to keep the depth.",
                UserWarning,
                stacklevel=3,
            )
        array = np.asarray(image)
        mode = image.mode
    if mode.startswith("I;16"):
        array = array.astype(np.uint16)
    values = _float_samples(array)
    if mode in ("LA", "RGBA"):
        values = _composite_on_white(values)
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    return Signal(
        values, "image", (1.0, 1.0), ("px", "px"), values.ndim == 3, str(path), str(array.dtype)
    )


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as handle:
        head = handle.read(25)
    return head[24] if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 25 else None


def _composite_on_white(values: np.ndarray) -> np.ndarray:
    """Colour and alpha blended onto white, as scikit-image's ``rgba2rgb``."""
    colour, alpha = values[..., :-1], values[..., -1:]
    blended = colour * alpha + (1.0 - alpha)
    return blended[..., 0] if blended.shape[-1] == 1 else blended


def _read_tiff(path: Path, max_samples: int) -> Signal:
    tifffile = _need("tifffile", "tifffile", "TIFF files")
    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        _check_size(series.shape, max_samples, path)
        array = series.asarray()
    array = np.squeeze(array)
    values = _float_samples(array) if array.dtype.kind in "biu" else array.astype(np.float64)
    if values.ndim == 2 or (values.ndim == 3 and values.shape[-1] in (3, 4)):
        if values.ndim == 3 and values.shape[-1] == 4:
            values = _composite_on_white(values)
        return Signal(
            values, "image", (1.0, 1.0), ("px", "px"), values.ndim == 3, str(path), str(array.dtype)
        )
    if values.ndim == 3:
        return Signal(
            values, "volume", (1.0, 1.0, 1.0), ("voxel",) * 3, False, str(path), str(array.dtype)
        )
    raise SignalFileError(f"{path}: a TIFF of shape {array.shape} is neither an image nor a stack")


def _read_audio(path: Path, max_samples: int) -> Signal:
    try:
        import soundfile
    except ImportError:
        soundfile = None
    if soundfile is not None:
        info = soundfile.info(str(path))
        _check_size((info.frames, info.channels), max_samples, path)
        values, rate = soundfile.read(str(path), dtype="float64", always_2d=False)
        dtype = info.subtype
    elif path.suffix.lower() == ".wav":
        from scipy.io import wavfile

        rate, array = wavfile.read(path, mmap=True)
        _check_size(array.shape, max_samples, path)
        array = np.array(array)
        dtype = str(array.dtype)
        values = (
            (array.astype(np.float64) - 128.0) / 128.0
            if array.dtype == np.uint8
            else _float_samples(array)
        )
    else:
        _need("soundfile", "soundfile", f"{path.suffix} audio")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return Signal(values, "audio", (1.0 / float(rate),), ("s",), values.ndim == 2, str(path), dtype)


def _read_video(path: Path, max_samples: int) -> Signal:
    iio = _need("imageio.v3", "imageio av", "video")
    _need("av", "av", "video")
    meta = iio.immeta(path, plugin="pyav")
    properties = iio.improps(path, plugin="pyav")
    _check_size(properties.shape, max_samples, path)
    frames = iio.imread(path, plugin="pyav")
    fps = float(meta.get("fps") or 1.0)
    values = _float_samples(frames)
    return Signal(
        values,
        "video",
        (1.0 / fps, 1.0, 1.0),
        ("s", "px", "px"),
        values.ndim == 4,
        str(path),
        str(frames.dtype),
    )


def _read_array(path: Path, max_samples: int) -> Signal:
    if path.suffix.lower() == ".npy":
        with open(path, "rb") as handle:
            _check_size(_npy_header_shape(handle), max_samples, path)
        array = np.load(path, allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as archive:
            if len(archive.files) != 1:
                raise SignalFileError(
                    f"{path}: holds {len(archive.files)} arrays ({', '.join(archive.files)}); "
                    "skinr reads an .npz with exactly one"
                )
            (name,) = archive.files
            # The member's header declares its shape before anything is decompressed.
            _check_size(_npz_member_shape(archive, name), max_samples, path)
            array = archive[name]
    if array.dtype.kind not in "biuf":
        raise SignalFileError(f"{path}: holds {array.dtype} values, not numbers")
    values = np.array(array, dtype=np.float64)
    # The array's layout, read as to_coords reads it: (T,), (H, W[, C]), (D, H, W),
    # (T, H, W, C); a short last axis of a 3-D array is taken as colour.
    if values.ndim == 1:
        kind, units, channels = "audio", ("sample",), False
    elif values.ndim == 2:
        kind, units, channels = "image", ("px", "px"), False
    elif values.ndim == 3 and values.shape[-1] in (3, 4):
        kind, units, channels = "image", ("px", "px"), True
    elif values.ndim == 3:
        kind, units, channels = "volume", ("voxel",) * 3, False
    elif values.ndim == 4 and values.shape[-1] <= 4:
        kind, units, channels = "video", ("frame", "px", "px"), True
    else:
        raise SignalFileError(
            f"{path}: an array of shape {values.shape} is not a signal skinr knows "
            "(T,), (H, W[, C]), (D, H, W) or (T, H, W, C)"
        )
    return Signal(values, kind, (1.0,) * len(units), units, channels, str(path), str(array.dtype))


def _npy_header_shape(handle) -> tuple[int, ...]:
    """The shape an .npy stream's header declares, read before any data."""
    from numpy.lib import format as npy_format

    version = npy_format.read_magic(handle)
    reader = (
        npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    )
    shape, _, _ = reader(handle)
    return shape


def _npz_member_shape(archive, name: str) -> tuple[int, ...]:
    with archive.zip.open(f"{name}.npy") as member:
        return _npy_header_shape(member)


def _read_nifti(path: Path, max_samples: int) -> Signal:
    nibabel = _need("nibabel", "nibabel", "NIfTI volumes")
    image = nibabel.load(str(path))
    shape = image.header.get_data_shape()
    _check_size(shape, max_samples, path)
    values = np.asarray(image.get_fdata(dtype=np.float64))
    zooms = tuple(float(z) for z in image.header.get_zooms()[: values.ndim])
    # NIfTI's "unknown" spatial unit is read as millimetres by convention.
    unit = {"meter": "m", "micron": "um"}.get(image.header.get_xyzt_units()[0], "mm")
    if values.ndim != 3:
        raise SignalFileError(f"{path}: a NIfTI of shape {values.shape} is not a 3-D volume")
    return Signal(
        values, "volume", zooms, (unit,) * 3, False, str(path), str(image.header.get_data_dtype())
    )


def write(
    path: str | os.PathLike,
    signal: Signal | np.ndarray,
    *,
    kind: str | None = None,
    spacing=None,
    precision: str | None = None,
) -> Path:
    """Write a signal (or an array of the given ``kind``) to ``path``, atomically.

    Images are written at 8 bits (PNG, JPEG) or as float32 (TIFF), audio at
    ``precision`` (16-bit PCM by default), video with imageio and PyAV (or Pillow for
    GIF; MP4 as lossless RGB H.264), volumes as .npy, TIFF stacks or NIfTI (with ``spacing`` as
    the voxel size). Values outside [0, 1] (images, video) or [-1, 1] (audio) are
    clipped.

    Parameters
    ----------
    path : str or path-like
        Output file; its suffix chooses the format.
    signal : Signal or ndarray
        What to write. An array needs ``kind``.
    kind : {"image", "audio", "video", "volume"} or None
        Overrides ``signal.kind``.
    spacing : sequence of float or None
        Sample spacing (audio: seconds per sample; video: seconds per frame first);
        defaults to the signal's.
    precision : str or None
        Audio's sample type: a file's (:attr:`Signal.dtype`: ``"FLOAT"``,
        ``"PCM_24"``, ``"int16"``, ``"float32"``, ...), so that a signal read from a
        file is written back as precisely; None: a :class:`Signal`'s own, else 16-bit
        PCM.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    if isinstance(signal, Signal):
        values, kind, spacing = signal.values, kind or signal.kind, spacing or signal.spacing
        precision = precision or signal.dtype or None
    else:
        values = np.asarray(signal, dtype=np.float64)
        if kind is None:
            raise ValueError("write: an array needs kind='image', 'audio', 'video' or 'volume'")
        spacing = spacing or (1.0,) * values.ndim
    if kind not in KINDS:
        raise ValueError(f"write: kind must be one of {sorted(KINDS)}; got {kind!r}")
    suffix = _suffix(path)
    writer = {
        "image": _write_image,
        "audio": _write_audio,
        "video": _write_video,
        "volume": _write_volume,
    }[kind]
    # The encoders write to a path; they get a temporary one with the same suffix.
    with atomic_target(path, suffix=suffix) as temporary:
        if kind == "audio":
            _write_audio(temporary, suffix, values, spacing, precision)
        else:
            writer(temporary, suffix, values, spacing)
    return path


# numpy sample types -> soundfile's subtypes, for audio written as it was read.
_SUBTYPES = {
    "int16": "PCM_16",
    "int32": "PCM_32",
    "uint8": "PCM_U8",
    "float32": "FLOAT",
    "float64": "DOUBLE",
}


def _bytes8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)


def _write_image(path: Path, suffix: str, values, spacing) -> None:
    if suffix in TIFF_SUFFIXES:
        _need("tifffile", "tifffile", "TIFF files").imwrite(path, values.astype(np.float32))
        return
    from PIL import Image

    Image.fromarray(_bytes8(values)).save(path)


def _write_audio(path: Path, suffix: str, values, spacing, precision=None) -> None:
    rate = round(1.0 / float(spacing[0]))
    clipped = np.clip(values, -1.0, 1.0)
    subtype = _SUBTYPES.get(precision, precision) if precision else None
    try:
        import soundfile
    except ImportError:
        soundfile = None
    if soundfile is not None:
        formats = {".aif": "AIFF", ".oga": "OGG"}
        format_ = formats.get(suffix, suffix[1:].upper())
        if subtype is not None and not soundfile.check_format(format_, subtype):
            subtype = None  # e.g. FLAC holds no floats: the format's default
        soundfile.write(str(path), clipped, rate, format=format_, subtype=subtype)
    elif suffix == ".wav":
        from scipy.io import wavfile

        if subtype in ("FLOAT", "DOUBLE"):
            wavfile.write(
                path, rate, clipped.astype(np.float32 if subtype == "FLOAT" else np.float64)
            )
        else:
            wavfile.write(path, rate, np.round(clipped * 32767).astype(np.int16))
    else:
        _need("soundfile", "soundfile", f"{suffix} audio")


def _write_video(path: Path, suffix: str, values, spacing) -> None:
    fps = 1.0 / float(spacing[0])
    frames = _bytes8(values)
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(
            path,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
        )
        return
    av = _need("av", "av", "video")
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    # Lossless: H.264 of the RGB frames themselves at constant rate factor 0, so the
    # file holds exactly the 8-bit frames (libx264's YUV 4:2:0 would resample colour
    # and quantise). Browsers and QuickTime do not play RGB H.264; ffmpeg converts.
    with av.open(str(path), "w", format="mp4" if suffix == ".mp4" else None) as container:
        stream = container.add_stream("libx264rgb", rate=max(1, round(fps)))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        stream.options = {"crf": "0", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_volume(path: Path, suffix: str, values, spacing) -> None:
    if suffix == ".npy":
        np.save(path, values)
    elif suffix in TIFF_SUFFIXES:
        tifffile = _need("tifffile", "tifffile", "TIFF files")
        tifffile.imwrite(path, values.astype(np.float32), photometric="minisblack")
    elif suffix in NIFTI_SUFFIXES:
        nibabel = _need("nibabel", "nibabel", "NIfTI volumes")
        affine = np.diag([*map(float, spacing), 1.0])
        image = nibabel.Nifti1Image(values.astype(np.float32), affine)
        image.header.set_xyzt_units("mm")
        nibabel.save(image, str(path))
    else:
        raise SignalFileError(f"{path}: volumes are written as .npy, .tif or .nii(.gz)")
