"""POST /api/projects/{id}/images:upload and the display-sized copies of /media/items/{id}.

Over every store (memory, SQLite, PostgreSQL): many files, zips (folders as labels, skipped
entries), every refusal (path traversal, absolute names, corrupt, wrong type, too many bytes,
too many pixels, zip bombs, too many entries, a bad label, a duplicate under
on_duplicate=fail), and after each refusal nothing is imported and no image file is left.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from labelwise.service.app import create_app
from labelwise.service.features import project_features
from labelwise.settings import Settings

from .conftest import ADMIN, auth, detail

LIMITS = {
    "max_image_bytes": 1_000_000,
    "max_image_pixels": 10_000_000,
    "max_zip_entries": 40,
    "max_zip_bytes": 2_000_000,
    "max_upload_bytes": 8_000_000,
}


@pytest.fixture
def settings(tmp_path):
    return Settings(worker="external", data_dir=tmp_path / "data", **LIMITS)


@pytest.fixture
def client(store, settings):
    with TestClient(create_app(settings, store, admin_token=ADMIN)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN}"
        yield c


@pytest.fixture
def pid(client):
    body = {"name": "defects", "classes": ["ok", "scratch", "dent"]}
    return client.post("/api/projects", json=body).raise_for_status().json()["id"]


def png(colour=(200, 30, 30), size=(20, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(size=(30, 20), exif_orientation=None) -> bytes:
    w, h = size
    gradient = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, axis=0)
    img = Image.fromarray(np.stack([gradient, gradient[:, ::-1], gradient // 2], axis=2))
    buf = io.BytesIO()
    kw = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif
    img.save(buf, format="JPEG", quality=85, **kw)
    return buf.getvalue()


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims ``width x height`` pixels (a few bytes of data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def upload(client, pid, files, **params):
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post(f"/api/projects/{pid}/images:upload", params=params, files=parts)


def items(client, pid):
    return client.get(f"/api/projects/{pid}/items", params={"limit": 1000}).json()


def stored_files(settings, pid):
    folder = settings.data_dir / "images" / f"project_{pid}"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_nothing_imported(client, settings, pid, before_files=()):
    assert items(client, pid) == []
    assert stored_files(settings, pid) == sorted(before_files)  # staging folder gone too


# --------------------------------------------------------------------------- success


def test_many_files_are_stored_content_addressed(client, settings, pid):
    red, blue, photo = png(), png((0, 0, 255)), jpeg()
    r = upload(client, pid, [("red.png", red), ("blue.png", blue), ("photo.jpg", photo)])
    assert r.status_code == 201, r.text
    assert r.json() == {"n_read": 3, "n_created": 3, "n_skipped": 0}
    got = {it["external_id"]: it for it in items(client, pid)}
    assert sorted(got) == ["blue.png", "photo.jpg", "red.png"]
    folder = (settings.data_dir / "images" / f"project_{pid}").resolve()
    for name, data, suffix in [("red.png", red, ".png"), ("photo.jpg", photo, ".jpg")]:
        path = got[name]["payload"]["image"]
        assert path == str(folder / f"{hashlib.sha256(data).hexdigest()}{suffix}")
        with open(path, "rb") as f:
            assert f.read() == data
        assert got[name]["metadata"] == {"source": "upload"}
        assert got[name]["status"] == "unlabeled"


def test_reuploads_dedupe_files_and_items(client, settings, pid):
    red = png()
    assert upload(client, pid, [("red.png", red)]).status_code == 201
    r = upload(client, pid, [("red.png", red), ("copy.png", red)])
    assert r.json() == {"n_read": 2, "n_created": 1, "n_skipped": 1}
    paths = {it["payload"]["image"] for it in items(client, pid)}
    assert len(paths) == 1 and len(stored_files(settings, pid)) == 1  # one file, two items


def test_zip_with_class_folders(client, settings, pid):
    archive = make_zip(
        {
            "scratch/a.png": png(),
            "dent/b.jpg": jpeg(),
            "top.png": png((1, 2, 3)),
            "__MACOSX/scratch/._a.png": b"resource fork",
            "scratch/.DS_Store": b"\0\0",
            "README.txt": b"defect photos",
        }
    )
    r = upload(client, pid, [("batch1.zip", archive)], labels="folder")
    assert r.status_code == 201, r.text
    assert r.json() == {"n_read": 3, "n_created": 3, "n_skipped": 0, "n_ignored": 3}
    got = {it["external_id"]: it for it in items(client, pid)}
    assert got["scratch/a.png"]["label"] == "scratch"
    assert got["dent/b.jpg"]["label"] == "dent"
    assert got["top.png"]["label"] is None  # no folder, no label
    assert got["top.png"]["metadata"] == {"source": "batch1.zip"}
    assert {got[k]["status"] for k in got} == {"labeled", "unlabeled"}


def test_one_label_for_the_whole_upload(client, pid):
    r = upload(client, pid, [("a.png", png()), ("b.png", png((9, 9, 9)))], label="ok")
    assert r.status_code == 201
    assert {it["label"] for it in items(client, pid)} == {"ok"}


def test_uploaded_images_get_hog_features(client, store, settings, pid):
    upload(client, pid, [("a.png", png()), ("b.jpg", jpeg()), ("c.png", png((0, 255, 0)))])
    fm = project_features(store, pid, settings)
    assert fm.kind == "image" and fm.X.shape == (3, 7 * 7 * 4 * 9 + 24)
    green = np.asarray(fm.X)[2, -24:].reshape(3, 8)  # the colour part of c.png
    np.testing.assert_array_equal(green[:, 0], [1, 0, 1])
    np.testing.assert_array_equal(green[:, 7], [0, 1, 0])


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "name",
    ["../evil.png", "good/../../evil.png", "/etc/evil.png", "C:/evil.png", "a\\..\\evil.png"],
)
def test_zip_with_unsafe_names_imports_nothing(client, settings, pid, name):
    archive = make_zip({"fine.png": png(), name: png((5, 5, 5))})
    message = detail(upload(client, pid, [("x.zip", archive)]), 422)
    assert "x.zip" in message and "evil.png" in message
    assert_nothing_imported(client, settings, pid)


def test_corrupt_image_is_named_and_nothing_is_imported(client, settings, pid):
    truncated = png(size=(200, 200))[:-60]
    r = upload(client, pid, [("good.png", png()), ("broken.png", truncated), ("z.jpg", jpeg())])
    message = detail(r, 422)
    assert "broken.png" in message and "nothing was imported" in message.lower()
    assert_nothing_imported(client, settings, pid)


def test_corrupt_jpeg_inside_a_zip(client, settings, pid):
    cut = jpeg(size=(300, 300))[:600]
    archive = make_zip({"ok/a.png": png(), "ok/cut.jpg": cut})
    assert "ok/cut.jpg" in detail(upload(client, pid, [("b.zip", archive)]), 422)
    assert_nothing_imported(client, settings, pid)


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("notes.png", b"these are notes, not pixels", "not an image"),
        ("pic.png", b"", "not an image"),
        ("pic.ppm", b"P6\n2 2\n255\n" + bytes(12), "is a PPM image"),
        ("fake.zip", b"PK\x03\x04 and then nothing", "not a readable zip"),
    ],
)
def test_wrong_type_is_refused_by_content(client, settings, pid, name, data, says):
    message = detail(upload(client, pid, [("good.png", png()), (name, data)]), 422)
    assert name in message and says in message
    assert_nothing_imported(client, settings, pid)


def test_image_over_the_byte_limit(client, settings, pid):
    noise = np.random.RandomState(0).randint(0, 256, (700, 700, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    assert len(buf.getvalue()) > LIMITS["max_image_bytes"]
    message = detail(upload(client, pid, [("a.png", png()), ("noise.png", buf.getvalue())]), 413)
    assert "noise.png" in message and "LABELWISE_MAX_IMAGE_BYTES" in message
    assert_nothing_imported(client, settings, pid)


@pytest.mark.parametrize(
    ("side", "says"),
    [
        (5_000, "25,000,000 pixels, more than 10,000,000"),  # over max_image_pixels
        (40_000, "too large to decode safely"),  # over Pillow's own MAX_IMAGE_PIXELS too
    ],
)
def test_decompression_bomb_is_refused_from_its_header(client, settings, pid, side, says):
    message = detail(upload(client, pid, [("bomb.png", bomb_png(side, side))]), 413)
    assert "bomb.png" in message and says in message
    assert_nothing_imported(client, settings, pid)


def test_zip_bomb_is_refused(client, settings, pid):
    zeros = b"\0" * 3_000_000  # deflates to a few kB; decompressed it is over the 2 MB limit
    archive = make_zip({"a.png": png(), "big.png": zeros})
    assert len(archive) < 20_000
    message = detail(upload(client, pid, [("bomb.zip", archive)]), 413)
    assert "LABELWISE_MAX_ZIP_BYTES" in message or "LABELWISE_MAX_IMAGE_BYTES" in message
    assert_nothing_imported(client, settings, pid)


def test_zip_whose_header_understates_the_size(client, settings, pid):
    # the central directory claims 100 bytes for a 3 MB entry: reading stops at 100 bytes and
    # the checksum fails, so the lie gets no further than the zip's own integrity check
    archive = bytearray(make_zip({"liar.png": b"\0" * 3_000_000}))
    central = archive.index(b"PK\x01\x02")
    archive[central + 24 : central + 28] = struct.pack("<I", 100)
    message = detail(upload(client, pid, [("liar.zip", bytes(archive))]), 422)
    assert "liar.png cannot be unpacked" in message
    assert_nothing_imported(client, settings, pid)


def test_zip_with_too_many_entries(client, settings, pid):
    archive = make_zip({f"{i}.png": png((i, i, i)) for i in range(41)})
    assert "41 entries" in detail(upload(client, pid, [("many.zip", archive)]), 413)
    assert_nothing_imported(client, settings, pid)


def test_bad_folder_label_imports_nothing(client, settings, pid):
    archive = make_zip({"scratch/a.png": png(), "crack/b.png": png((1, 1, 1))})
    message = detail(upload(client, pid, [("c.zip", archive)], labels="folder"), 422)
    assert "crack/b.png" in message and "crack" in message
    assert_nothing_imported(client, settings, pid)


def test_a_failing_write_removes_the_files_it_stored(client, settings, pid):
    assert upload(client, pid, [("a.png", png())]).status_code == 201
    before = stored_files(settings, pid)
    # a.png again with other content: on_duplicate=fail refuses after the files were moved
    r = upload(client, pid, [("a.png", png((0, 0, 0))), ("b.png", png((7, 7, 7)))],
               on_duplicate="fail")  # fmt: skip
    assert "a.png" in detail(r, 409)
    assert stored_files(settings, pid) == before  # the new files are gone, the old one stays
    assert [it["external_id"] for it in items(client, pid)] == ["a.png"]


def test_no_files_and_non_multipart(client, settings, pid):
    r = client.post(f"/api/projects/{pid}/images:upload", files={"other": ("a.png", png())})
    assert "no files uploaded" in detail(r, 422)
    r = client.post(f"/api/projects/{pid}/images:upload", json={"files": []})
    assert "multipart" in detail(r, 422)
    only_text = make_zip({"readme.txt": b"hello"})
    assert "holds no images" in detail(upload(client, pid, [("t.zip", only_text)]), 422)
    assert_nothing_imported(client, settings, pid)


def test_request_over_max_upload_bytes(client, settings, pid):
    big = b"\0" * (LIMITS["max_upload_bytes"] + 1)
    message = detail(upload(client, pid, [("big.png", big)]), 413)
    assert "LABELWISE_MAX_UPLOAD_BYTES" in message
    assert_nothing_imported(client, settings, pid)


def test_only_admins_upload(client, pid):
    token = client.post("/api/annotators", json={"name": "ann", "projects": [pid]}).json()["token"]
    r = client.post(
        f"/api/projects/{pid}/images:upload",
        files=[("files", ("a.png", png(), "image/png"))],
        headers=auth(token),
    )
    assert r.status_code == 403
    assert detail(upload(client, 999_999, [("a.png", png())]), 404)


# --------------------------------------------------------------------------- display


def test_large_upload_is_served_at_display_size(client, settings, pid):
    big = jpeg(size=(3000, 2000))
    assert upload(client, pid, [("big.jpg", big)]).status_code == 201
    (item,) = items(client, pid)
    r = client.get(f"/media/items/{item['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as shown:
        assert shown.size == (1024, 683)  # longest side 1,024, aspect kept (2000 * 1024 / 3000)
    assert "private" in r.headers["cache-control"]
    etag = r.headers["etag"]
    again = client.get(f"/media/items/{item['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    cached = list((settings.data_dir / "images" / "display").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".jpg"
    original = client.get(f"/media/items/{item['id']}", params={"size": "original"})
    assert original.content == big


def test_exif_orientation_is_applied_for_display(client, pid):
    # stored 300 x 100 with orientation 6 (turn 90 degrees): shown 100 x 300
    assert upload(client, pid, [("turned.jpg", jpeg((300, 100), exif_orientation=6))]).is_success
    (item,) = items(client, pid)
    r = client.get(f"/media/items/{item['id']}")
    with Image.open(io.BytesIO(r.content)) as shown:
        assert shown.size == (100, 300)


def test_small_browser_images_are_served_as_they_are(client, pid):
    data = png()
    upload(client, pid, [("small.png", data)])
    (item,) = items(client, pid)
    r = client.get(f"/media/items/{item['id']}")
    assert r.content == data and r.headers["content-type"] == "image/png"


def test_tiff_and_transparency_are_converted(client, pid):
    rgba = Image.new("RGBA", (2000, 100), (255, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, format="TIFF")
    assert upload(client, pid, [("clear.tif", buf.getvalue())]).status_code == 201
    (item,) = items(client, pid)
    r = client.get(f"/media/items/{item['id']}")
    assert r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as shown:
        assert shown.size == (1024, 51) and shown.mode == "RGBA"


def test_display_only_for_members(client, pid):
    upload(client, pid, [("a.png", png())])
    (item,) = items(client, pid)
    other = client.post("/api/projects", json={"name": "other", "classes": ["a", "b"]}).json()
    token = client.post("/api/annotators", json={"name": "x", "projects": [other["id"]]}).json()[
        "token"
    ]
    assert client.get(f"/media/items/{item['id']}", headers=auth(token)).status_code == 404
    assert (
        client.get(f"/media/items/{item['id']}", headers={"Authorization": ""}).status_code == 401
    )


def test_display_copy_of_a_16_bit_image_keeps_its_grey(tmp_path):
    """A 2,000 px wide 16-bit PNG of 25700 everywhere is shown as grey 100 (25700 / 257),
    not clipped to white."""
    import numpy as np
    from PIL import Image

    from labelwise.service.images import display_copy
    from labelwise.settings import Settings

    path = tmp_path / "wide16.png"
    Image.fromarray(np.full((20, 2000), 25700, dtype=np.uint16)).save(path)
    shown = display_copy(path, Settings(data_dir=tmp_path / "data"))
    with Image.open(shown.path) as img:
        pixels = np.asarray(img.convert("L"), dtype=np.int64)
    assert pixels.shape == (10, 1024)
    assert np.abs(pixels - 100).max() <= 1  # JPEG rounding
