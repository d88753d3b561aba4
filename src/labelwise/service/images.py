"""Image items: upload (many files or zip archives) and a display-sized copy for the pages.

**Upload** (:func:`import_images`, ``POST /api/projects/{id}/images:upload``). Every uploaded
file is an image or a ``.zip`` of images. Nothing is trusted until it is checked:

- type by content, not by name: Pillow must recognise the bytes as one of :data:`FORMATS`
  (JPEG, PNG, WebP, GIF, BMP, TIFF), ``verify()`` them and decode them whole (a truncated file
  fails here, not when the labeling page shows it);
- size: each image at most ``settings.max_image_bytes`` bytes and ``settings.max_image_pixels``
  pixels (a decompression bomb is refused from its header, before it is decoded);
- zip archives: no absolute names, no ``..`` components, no encrypted entries, at most
  ``settings.max_zip_entries`` entries and ``settings.max_zip_bytes`` bytes once decompressed
  (counted while reading, so a lying header does not help a zip bomb). Folders, ``__MACOSX/``,
  hidden files and files without an image suffix are skipped and counted.

Images are stored content-addressed under ``settings.data_dir/images/project_<id>/<sha256>.<ext>``
(re-uploads dedupe), and items get ``payload = {"image": path}`` as the folder importer gives them,
external id = the file name (for a zip entry its path inside the archive), ``metadata.source`` =
the zip's name or ``"upload"``. With ``labels="folder"`` a zip entry's parent folder is its label
(``scratch/img1.png`` -> ``scratch``), as in ``labelwise import --label-field folder``; ``label``
labels every image of the upload.

It is all or nothing: any bad file is an error naming it (422; 413 for the size limits), and
then no item is written (one transaction) and the image files this upload put on disk are
removed again.

**Display** (:func:`display_copy`): the labeling page gets a copy whose longest side is at most
``settings.image_display_size`` (1,024 px by default), EXIF orientation applied, as JPEG (photos)
or PNG (transparency, palettes, line art), cached under ``settings.data_dir/images/display``.
An original that needs neither resizing, turning nor converting is served as it is.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from labelwise.errors import LabelwiseError
from labelwise.importers import IMAGE_EXTENSIONS, ImportResult, ImportValidationError
from labelwise.storage.base import BaseStore, NewItem, check_label
from labelwise.tasks import TaskType

__all__ = [
    "FORMATS",
    "DisplayImage",
    "ImageTooLargeError",
    "ImageUpload",
    "check_image",
    "display_copy",
    "import_images",
    "project_image_dir",
]

#: Pillow format name -> the suffix stored files get.
FORMATS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
}
#: Formats the browser shows as they are (TIFF and BMP are converted for display).
_BROWSER_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
_CHUNK = 1 << 20
_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


class ImageTooLargeError(LabelwiseError):
    """An image, or a zip archive once decompressed, is over a size limit (HTTP 413)."""

    def __init__(self, message: str) -> None:
        super().__init__(message + " Nothing was imported.")


@dataclass
class ImageUpload:
    """One uploaded file: its name as sent and an open binary file positioned at its start."""

    filename: str
    file: IO[bytes]


@dataclass
class _Staged:
    external_id: str
    source: str
    label: Any
    digest: str
    suffix: str
    tmp: Path


@dataclass
class _Outcome:
    staged: list[_Staged] = field(default_factory=list)
    n_ignored: int = 0


# --------------------------------------------------------------------------- checks


def _limits(settings: Any) -> tuple[int, int, int, int]:
    return (
        int(settings.max_image_bytes),
        int(settings.max_image_pixels),
        int(settings.max_zip_entries),
        int(settings.max_zip_bytes),
    )


def check_image(path: Path, name: str, max_pixels: int) -> str:
    """Check that ``path`` is a whole image of an allowed format; return its format's suffix.

    Parameters
    ----------
    path : Path
        The bytes, on disk.
    name : str
        The file's name for messages.
    max_pixels : int
        Width x height limit, checked from the header before anything is decoded.

    Returns
    -------
    suffix : str
        From :data:`FORMATS` (``".png"``, ``".jpg"``, ...).

    Raises
    ------
    ImportValidationError
        Not an image, an image of another type, or a corrupt / truncated one.
    ImageTooLargeError
        More than ``max_pixels`` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    allowed = ", ".join(FORMATS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                fmt = img.format
                width, height = img.size
                if fmt not in FORMATS:
                    raise ImportValidationError(
                        f"{name} is a {fmt} image; upload {allowed} (convert it first).",
                    )
                if width * height > max_pixels:
                    raise ImageTooLargeError(
                        f"{name} has {width} x {height} = {width * height:,} pixels, more than "
                        f"{max_pixels:,} (LABELWISE_MAX_IMAGE_PIXELS); scale it down."
                    )
                img.verify()
            with Image.open(path) as img:  # verify() leaves the image unusable: decode anew
                img.load()
        except LabelwiseError:  # ours, above (a ValueError, like Pillow's own)
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageTooLargeError(f"{name} is too large to decode safely ({e}).") from None
        except UnidentifiedImageError:
            raise ImportValidationError(
                f"{name} is not an image (its content is none of {allowed}).",
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ImportValidationError(
                f"{name} is a corrupt or truncated image ({e}); fix or remove it.",
            ) from None
    return FORMATS[fmt]


def _zip_member_name(info: zipfile.ZipInfo, archive: str) -> str | None:
    """The entry's safe relative path, ``None`` for entries to skip; raises for unsafe ones."""
    raw = info.filename
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":") or "\\" in raw:
        raise ImportValidationError(
            f"{archive} holds an entry with an absolute or Windows path ({raw!r}); zip the "
            "images with relative names.",
        )
    parts = PurePosixPath(raw).parts
    if ".." in parts or any(p == "" for p in raw.split("/")[:-1]):
        raise ImportValidationError(
            f"{archive} holds an entry that leaves the archive ({raw!r}); zip the images with "
            "plain relative names.",
        )
    if info.is_dir():
        return None
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ImportValidationError(
            f"{archive} holds a symbolic link ({raw!r}); zip the files themselves."
        )
    if parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return None
    if PurePosixPath(raw).suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    return "/".join(parts)


def _copy_limited(src: IO[bytes], dest: Path, limit: int, too_large: str) -> tuple[str, int]:
    """Copy at most ``limit`` bytes (more raises ``ImageTooLargeError(too_large)``).

    Returns the sha256 hex digest and the number of bytes.
    """
    h = hashlib.sha256()
    n = 0
    with dest.open("wb") as out:
        while chunk := src.read(_CHUNK):
            n += len(chunk)
            if n > limit:
                raise ImageTooLargeError(too_large)
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest(), n


def _is_zip(upload: ImageUpload) -> bool:
    head = upload.file.read(4)
    upload.file.seek(0)
    return head in (b"PK\x03\x04", b"PK\x05\x06") or upload.filename.lower().endswith(".zip")


def _stage(uploads: list[ImageUpload], staging: Path, settings: Any, label_of: Any) -> _Outcome:
    """Copy, check and hash every image into ``staging``; nothing is stored yet."""
    max_bytes, max_pixels, max_entries, max_zip_bytes = _limits(settings)
    out = _Outcome()
    counter = 0

    def stage_one(
        src: IO[bytes], external_id: str, source: str, label: Any, zip_left: int | None = None
    ) -> int:
        """Copy and check one image; return its size in bytes."""
        nonlocal counter
        counter += 1
        tmp = staging / f"{counter:06d}"
        too_large = (
            f"{external_id} is larger than {max_bytes:,} bytes (LABELWISE_MAX_IMAGE_BYTES); "
            "scale it down or raise the limit."
        )
        limit = max_bytes
        if zip_left is not None and zip_left < max_bytes:  # the zip's budget runs out first
            limit = zip_left
            too_large = (
                f"{source} decompresses to more than {max_zip_bytes:,} bytes "
                "(LABELWISE_MAX_ZIP_BYTES); split it."
            )
        digest, n = _copy_limited(src, tmp, limit, too_large)
        suffix = check_image(tmp, external_id, max_pixels)
        out.staged.append(_Staged(external_id, source, label, digest, suffix, tmp))
        return n

    for up in uploads:
        name = PurePosixPath(up.filename.replace("\\", "/")).name or "upload"
        if not _is_zip(up):
            stage_one(up.file, name, "upload", label_of(None, name))
            continue
        try:
            archive = zipfile.ZipFile(up.file)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise ImportValidationError(f"{name} is not a readable zip archive ({e}).") from None
        with archive:
            infos = archive.infolist()
            if len(infos) > max_entries:
                raise ImageTooLargeError(
                    f"{name} holds {len(infos):,} entries, more than {max_entries:,} "
                    "(LABELWISE_MAX_ZIP_ENTRIES); split it."
                )
            declared = 0  # sizes from the headers: refuse early
            read = 0  # bytes actually decompressed: a header that lies does not help
            for info in infos:
                member = _zip_member_name(info, name)
                if member is None:
                    if not info.is_dir():
                        out.n_ignored += 1
                    continue
                if info.flag_bits & 0x1:
                    raise ImportValidationError(
                        f"{name}: {member} is encrypted; zip the images without a password."
                    )
                declared += info.file_size
                if declared > max_zip_bytes:
                    raise ImageTooLargeError(
                        f"{name} decompresses to more than {max_zip_bytes:,} bytes "
                        "(LABELWISE_MAX_ZIP_BYTES); split it."
                    )
                try:
                    with archive.open(info) as src:
                        label = label_of(member, member)
                        read += stage_one(src, member, name, label, max_zip_bytes - read)
                except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
                        zlib.error, EOFError) as e:  # fmt: skip
                    raise ImportValidationError(
                        f"{name}: {member} cannot be unpacked ({e})."
                    ) from None
    return out


# --------------------------------------------------------------------------- import


def project_image_dir(settings: Any, project_id: int) -> Path:
    """Where a project's uploaded images live: ``data_dir/images/project_<id>``."""
    return Path(settings.data_dir).resolve() / "images" / f"project_{project_id}"


def _project_lock(project_id: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(project_id, threading.Lock())


def import_images(
    store: BaseStore,
    project_id: int,
    uploads: list[ImageUpload],
    settings: Any,
    *,
    labels: str = "none",
    label: Any = None,
    on_duplicate: str = "skip",
) -> tuple[ImportResult, int]:
    """Check and store uploaded images (files or zip archives) as items of a project.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    uploads : list of ImageUpload
        Images and ``.zip`` archives of images (recognised by content).
    settings : Settings
        ``data_dir`` and the limits ``max_image_bytes``, ``max_image_pixels``,
        ``max_zip_entries``, ``max_zip_bytes``.
    labels : {"none", "folder"}
        ``"folder"``: a zip entry's parent folder names its label (entries at the top of the
        archive and loose files get none).
    label : optional
        One label for every image of the upload (wins over ``labels="folder"``); for a
        multilabel project ``"a|b"`` or a list.
    on_duplicate : {"skip", "update", "fail"}
        For file names (external ids) already in the project with other content.

    Returns
    -------
    (result, n_ignored) : tuple of ImportResult and int
        What the import did; zip entries skipped (folders excluded: hidden files,
        ``__MACOSX``, files without an image suffix).

    Raises
    ------
    ImportValidationError
        No images, an unreadable, corrupt or unsupported file, an unsafe zip entry, a bad
        label: names the file; nothing imported.
    ImageTooLargeError
        A size limit; nothing imported.
    DuplicateItemsError
        ``on_duplicate="fail"`` and names repeat with other content; nothing imported.
    """
    if labels not in ("none", "folder"):
        raise LabelwiseError(f"labels must be 'none' or 'folder'; got {labels!r}.")
    if not uploads:
        raise ImportValidationError("no files uploaded; send images or a zip as field 'files'.")
    project = store.get_project(project_id)

    def checked(raw: Any, where: str) -> Any:
        if project.task_type == TaskType.MULTILABEL and isinstance(raw, str):
            raw = [c for c in raw.split("|") if c]  # "a|b", as in a CSV cell
        try:
            return check_label(project, raw)
        except LabelwiseError as e:
            raise ImportValidationError(f"{where}: {e}") from None

    fixed = None if label is None else checked(label, "label")

    def label_of(member: str | None, name: str) -> Any:
        if label is not None:
            return fixed
        if labels == "folder" and member is not None and "/" in member:
            return checked(member.split("/")[-2], name)
        return None

    folder = project_image_dir(settings, project_id)
    folder.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    with tempfile.TemporaryDirectory(prefix=".upload-", dir=folder) as staging:
        outcome = _stage(uploads, Path(staging), settings, label_of)
        if not outcome.staged:
            raise ImportValidationError(
                "the upload holds no images (zip entries need an image suffix: "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))})."
            )
        with _project_lock(project_id):  # another upload cannot remove a file we rely on
            try:
                items = []
                for s in outcome.staged:
                    final = folder / f"{s.digest}{s.suffix}"
                    if not final.exists():
                        os.replace(s.tmp, final)
                        created.append(final)
                    items.append(
                        NewItem(
                            external_id=s.external_id,
                            payload={"image": str(final)},
                            metadata={"source": s.source},
                            label=s.label,
                        )
                    )
                written = store.write_items(project_id, items, on_duplicate=on_duplicate)
            except BaseException:
                for p in created:
                    p.unlink(missing_ok=True)
                raise
    n_read = len(outcome.staged)
    result = ImportResult(
        n_read=n_read,
        n_created=written.n_created,
        n_skipped=n_read - written.n_created - written.n_updated,
        n_updated=written.n_updated,
        n_changed=written.n_changed,
        changed_ids=written.changed_ids,
    )
    return result, outcome.n_ignored


# --------------------------------------------------------------------------- display


@dataclass(frozen=True)
class DisplayImage:
    """What to send: a file, its media type and an ETag."""

    path: Path
    media_type: str
    etag: str


def display_copy(path: str | os.PathLike[str], settings: Any) -> DisplayImage:
    """A copy of an image file fit for the browser, cached on disk.

    The longest side is at most ``settings.image_display_size`` (aspect kept), EXIF
    orientation is applied, and the copy is JPEG (quality 85) unless the image has
    transparency or a palette (PNG). An original the browser shows as it is (JPEG, PNG, WebP,
    GIF), small enough and not turned by EXIF is served unchanged.

    Parameters
    ----------
    path : path-like
    settings : Settings

    Returns
    -------
    DisplayImage
        ``etag`` changes when the file (size, modification time) or the display size does.

    Raises
    ------
    LabelwiseError
        If the file cannot be read as an image.
    """
    from PIL import Image, ImageOps

    from labelwise.features import to_8bit

    p = Path(path)
    st = p.stat()
    size = int(settings.image_display_size)
    key = hashlib.sha256(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}".encode()).hexdigest()
    etag = f'"{key[:32]}"'
    cache = Path(settings.data_dir) / "images" / "display"
    for suffix, media in ((".jpg", "image/jpeg"), (".png", "image/png")):
        hit = cache / f"{key}{suffix}"
        if hit.exists():
            return DisplayImage(hit, media, etag)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                fmt = img.format
                turned = img.getexif().get(0x0112, 1) not in (0, 1)
                if fmt in _BROWSER_FORMATS and max(img.size) <= size and not turned:
                    return DisplayImage(p, _BROWSER_FORMATS[fmt], etag)
                img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
                out = to_8bit(ImageOps.exif_transpose(img))  # 16-bit images: not clipped
                alpha = out.mode in ("RGBA", "LA", "PA", "P", "1") or "transparency" in out.info
                out = out.convert("RGBA" if alpha else "RGB")
                out.thumbnail((size, size), Image.Resampling.LANCZOS)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:  # fmt: skip
        raise LabelwiseError(f"{p.name} cannot be shown ({e}).") from None
    suffix, media = (".png", "image/png") if alpha else (".jpg", "image/jpeg")
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            if alpha:
                out.save(f, format="PNG", optimize=True)
            else:
                out.save(f, format="JPEG", quality=85, optimize=True, progressive=True)
        os.replace(tmp, cache / f"{key}{suffix}")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return DisplayImage(cache / f"{key}{suffix}", media, etag)
