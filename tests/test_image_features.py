"""image_descriptors (HOG + RGB colour histograms) and the service's "hog" image features.

Expected values are worked out by hand: a pure colour puts each channel's whole mass in one
bin; an edge along the columns has horizontal gradients (HOG bin 0 of 9 unsigned 20-degree
bins), an edge along the rows vertical ones (bin 4, 80-100 degrees); a flat image has no
gradient at all.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from labelwise.errors import LabelwiseError
from labelwise.features import image_descriptors, thumbnails
from labelwise.service.features import project_features
from labelwise.service.schemas import FEATURE_METHODS
from labelwise.settings import Settings
from labelwise.storage import InMemoryStore

N_HOG = 7 * 7 * 4 * 9  # (64 / 8 - 1)^2 blocks of 2 x 2 cells x 9 orientations


def _save(tmp_path, name, array, mode=None, **save_kw):
    path = tmp_path / name
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path, **save_kw)
    return str(path)


def _edge(vertical: bool) -> np.ndarray:
    """64 x 64 RGB: black left / white right (vertical edge), or its transpose."""
    a = np.zeros((64, 64, 3), np.uint8)
    a[:, 32:] = 255
    return a if vertical else a.transpose(1, 0, 2)


def _orientation_mass(row: np.ndarray) -> np.ndarray:
    """HOG part of a descriptor summed over blocks and cells: shape (9,)."""
    return row[:N_HOG].reshape(7, 7, 2, 2, 9).sum(axis=(0, 1, 2, 3))


def test_shape_dtype_and_layout(tmp_path):
    paths = [_save(tmp_path, f"{i}.png", np.full((10, 20, 3), 40 * i)) for i in range(3)]
    X = image_descriptors(paths)
    assert X.shape == (3, N_HOG + 24)
    assert X.dtype == np.float32
    # each channel's histogram is a distribution over its 8 bins
    np.testing.assert_allclose(X[:, N_HOG:].reshape(3, 3, 8).sum(axis=2), 1.0)
    # smaller copy, other bins: (32 / 8 - 1)^2 * 4 * 6 + 3 * 4
    assert image_descriptors(paths[:1], size=32, orientations=6, bins=4).shape == (1, 228)
    assert image_descriptors([]).shape == (0, N_HOG + 24)


def test_pure_red_puts_all_colour_mass_in_the_red_bins(tmp_path):
    red = _save(tmp_path, "red.png", np.tile([255, 0, 0], (30, 50, 1)))
    colour = image_descriptors([red])[0, N_HOG:].reshape(3, 8)
    np.testing.assert_array_equal(colour[0], [0, 0, 0, 0, 0, 0, 0, 1])  # R = 255: top bin
    np.testing.assert_array_equal(colour[1], [1, 0, 0, 0, 0, 0, 0, 0])  # G = 0
    np.testing.assert_array_equal(colour[2], [1, 0, 0, 0, 0, 0, 0, 0])  # B = 0


def test_half_and_half_colour_histogram(tmp_path):
    # left half (0, 100, 200), right half (255, 255, 255): bins 0..255 in steps of 32
    a = np.zeros((64, 64, 3), np.uint8)
    a[:, :32] = [0, 100, 200]
    a[:, 32:] = 255
    colour = image_descriptors([_save(tmp_path, "two.png", a)])[0, N_HOG:].reshape(3, 8)
    np.testing.assert_allclose(colour[0], [0.5, 0, 0, 0, 0, 0, 0, 0.5])
    np.testing.assert_allclose(colour[1], [0, 0, 0, 0.5, 0, 0, 0, 0.5])  # 100 // 32 = 3
    np.testing.assert_allclose(colour[2], [0, 0, 0, 0, 0, 0, 0.5, 0.5])  # 200 // 32 = 6


def test_hog_of_vertical_and_horizontal_edges(tmp_path):
    X = image_descriptors(
        [
            _save(tmp_path, "v.png", _edge(vertical=True)),
            _save(tmp_path, "h.png", _edge(vertical=False)),
        ]
    )
    v, h = _orientation_mass(X[0]), _orientation_mass(X[1])
    assert v[0] > 0 and np.count_nonzero(v) == 1  # horizontal gradients only: bin 0
    assert h[4] > 0 and np.count_nonzero(h) == 1  # vertical gradients only: bin 4
    assert v[0] == pytest.approx(h[4])  # the same edge, turned by 90 degrees
    assert not np.allclose(X[0, :N_HOG], X[1, :N_HOG])
    np.testing.assert_array_equal(X[0, N_HOG:], X[1, N_HOG:])  # same colours


def test_flat_image_has_no_gradients(tmp_path):
    X = image_descriptors([_save(tmp_path, "grey.png", np.full((64, 64), 128), mode="L")])
    assert not X[0, :N_HOG].any()
    # grey 128 in every channel: bin 4 (128..159) of each
    np.testing.assert_array_equal(X[0, N_HOG:].reshape(3, 8).argmax(axis=1), [4, 4, 4])


def test_exif_orientation_is_applied(tmp_path):
    # a vertical edge stored with EXIF orientation 6 (shown turned 90 degrees): a horizontal edge
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    Image.fromarray(_edge(vertical=True)).save(path, exif=exif, quality=95)
    mass = _orientation_mass(image_descriptors([str(path)])[0])
    assert mass.argmax() == 4


def test_transparent_pixels_count_as_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent black
    colour = image_descriptors([_save(tmp_path, "t.png", rgba, mode="RGBA")])[0, N_HOG:]
    np.testing.assert_array_equal(colour.reshape(3, 8)[:, 7], [1, 1, 1])


def test_unreadable_file_names_the_path(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(LabelwiseError, match=r"cannot read image .*broken\.png"):
        image_descriptors([str(bad)])
    with pytest.raises(LabelwiseError, match="cannot read image"):
        image_descriptors([str(tmp_path / "missing.png")])


@pytest.mark.parametrize(
    "kw", [{"size": 60}, {"size": 8}, {"cell": 0}, {"bins": 0}, {"orientations": 0}]
)
def test_bad_parameters(tmp_path, kw):
    with pytest.raises(LabelwiseError, match="image_descriptors needs"):
        image_descriptors([], **kw)


def test_large_jpeg_is_read_at_a_reduced_scale(tmp_path):
    # a large JPEG is decoded at a reduced scale (draft) and still gives the same layout
    buf = io.BytesIO()
    Image.fromarray(np.tile(_edge(vertical=True), (20, 20, 1))).save(buf, format="JPEG")
    path = tmp_path / "big.jpg"
    path.write_bytes(buf.getvalue())
    X = image_descriptors([str(path)])
    assert X.shape == (1, N_HOG + 24) and np.isfinite(X).all()


# --------------------------------------------------------------------------- the service


def _image_project(store, tmp_path, **kw):
    pid = store.create_project("img", "binary", ["v", "h"], **kw)
    for i, vertical in enumerate([True, False, True]):
        path = _save(tmp_path, f"item{i}.png", _edge(vertical))
        store.create_item(pid, f"item{i}.png", {"image": path})
    return pid


def test_hog_is_the_default_for_image_projects(tmp_path):
    assert FEATURE_METHODS["image"] == ("hog", "thumbnails")
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data")
    pid = _image_project(store, tmp_path)
    fm = project_features(store, pid, settings)
    assert fm.kind == "image" and fm.X.shape == (3, N_HOG + 24)
    paths = [it.payload["image"] for it in store.list_items(pid)]
    np.testing.assert_array_equal(np.asarray(fm.X), image_descriptors(paths))


@pytest.mark.parametrize("method", ["hog", "thumbnails"])
def test_image_pages_give_the_rows_of_one_pass(tmp_path, monkeypatch, method):
    from labelwise.service import features as SF

    monkeypatch.setattr(SF, "_IMAGE_PAGE", 2)  # three items: pages of 2 and 1
    store = InMemoryStore()
    pid = _image_project(store, tmp_path, strategy_params={"features": method})
    fm = project_features(store, pid, Settings(data_dir=tmp_path / "data"))
    paths = [it.payload["image"] for it in store.list_items(pid)]
    want = image_descriptors(paths) if method == "hog" else thumbnails(paths)
    np.testing.assert_array_equal(np.asarray(fm.X), want)


def test_thumbnails_stay_available_under_their_old_cache_key(tmp_path):
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data")
    pid = _image_project(store, tmp_path, strategy_params={"features": "thumbnails"})
    thumbs = project_features(store, pid, settings)
    paths = [it.payload["image"] for it in store.list_items(pid)]
    np.testing.assert_array_equal(np.asarray(thumbs.X), thumbnails(paths))
    store.update_project(pid, strategy_params={"features": "hog"})
    hog = project_features(store, pid, settings)
    # a thumbnails cache written before "hog" existed is never read as HOG features
    assert hog.key != thumbs.key and hog.X.shape == (3, N_HOG + 24)
    store.update_project(pid, strategy_params={})
    assert project_features(store, pid, settings).key == hog.key


@pytest.mark.parametrize("value", [25700, 65535])
def test_16_bit_images_are_mapped_onto_8_bits_not_clipped(tmp_path, value):
    """A 16-bit grayscale PNG of 25700 everywhere is grey 100 (25700 / 257), not white:
    each channel's 8-bin histogram has all pixels in bin 100 // 32 = 3 (65535: 255, bin 7).
    Pillow's own convert("RGB") clips every value over 255 to white."""
    path = tmp_path / "g16.png"
    Image.fromarray(np.full((40, 30), value, dtype=np.uint16)).save(path)
    X = image_descriptors([str(path)])
    expected = np.zeros(8, dtype=np.float32)
    expected[(value // 257) // 32] = 1.0
    np.testing.assert_array_equal(X[0, -24:], np.tile(expected, 3))
