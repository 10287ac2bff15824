"""Image piles: listing, odd files, every image mode, stable ids, holdout."""

import os

import ml_collections
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from noisy_student_tf.data import errors
from noisy_student_tf.data import image_files
from noisy_student_tf.data import preprocess
from noisy_student_tf.data import sources
from tests import image_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return image_tree.make_tree(str(tmp_path_factory.mktemp("tree")),
                                per_class=4, eval_per_class=2)


def _pile(tree, **kwargs):
    return ml_collections.ConfigDict(
        dict(kind="files", pattern=tree["pile"], **kwargs))


def test_listing_walks_any_depth_any_case_and_ignores_other_files(tree):
    files = image_files.list_image_files(tree["pile"])
    corrupt = os.path.join(tree["pile"], "a_corrupt.jpg")
    assert files == sorted(tree["pile_files"] + [corrupt])
    assert any(f.endswith("UPPER.PNG") for f in files)
    assert any(f.endswith("photo.JPEG") for f in files)
    assert any(f.count(os.sep) - tree["pile"].count(os.sep) == 4
               for f in files)  # c0/a/b/c/cmyk.jpg
    assert not any(f.endswith(".txt") for f in files)


def test_globs_separated_by_semicolons(tree):
    pile = tree["pile"]
    files = image_files.list_image_files(
        f"{pile}/c0/**/*.png;{pile}/tiny")
    assert {os.path.basename(f) for f in files} == {
        "gray.png", "rgba.png", "deep16.png", "la.png", "one_pixel.png"}


def test_no_images_is_one_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(errors.DataError, match="no image files"):
        image_files.list_image_files(str(tmp_path))
    with pytest.raises(errors.DataError, match="no image files"):
        image_files.list_image_files(str(tmp_path / "*.jpg"))


def test_source_drops_undecodable_files_and_keeps_ids_and_paths(tree):
    config = _pile(tree)
    listed = image_files.list_image_files(tree["pile"])
    records = list(sources.make_source(config).as_numpy_iterator())
    assert len(records) == tree["decodable"] == len(listed) - 1
    for record in records:
        assert listed[record["id"]] == record["path"].decode()
        assert record["label"] == -1
    assert sources.listed_count(config) == len(listed)
    # Shards: disjoint, covering, ids independent of the host.
    shards = [list(sources.make_source(config, shard=(i, 3))
                   .as_numpy_iterator()) for i in range(3)]
    ids = sorted(r["id"] for shard in shards for r in shard)
    assert ids == sorted(r["id"] for r in records)
    assert sum(sources.listed_count(config, (i, 3)) for i in range(3)) == \
        len(listed)
    assert sources.listed_count(_pile(tree, limit=3)) is None


@pytest.mark.parametrize("channels", [1, 3])
def test_every_image_mode_decodes_to_the_model_channels(tree, channels):
    fn = preprocess.get_preprocess_fn(
        f'decode(channels={channels})|center_crop(32)|keep("image")')
    ds = sources.make_source(_pile(tree)).map(fn)
    shapes = {tuple(r["image"].shape) for r in ds.as_numpy_iterator()}
    assert shapes == {(32, 32, channels)}


def test_decoded_content_matches_the_source_pixels(tmp_path):
    # Smooth: TF decodes JPEG with the fast integer IDCT, whose error on
    # noise reaches tens of levels (the reference decodes the same way).
    gray = np.add.outer(np.arange(9) * 25, np.arange(7) * 6).astype(
        np.uint8)
    files = {
        "gray.png": Image.fromarray(gray),
        "deep16.png": Image.fromarray(gray.astype(np.uint16) * 257),
        "la.png": Image.fromarray(gray).convert("LA"),
        "rgba.png": Image.fromarray(gray).convert("RGBA"),
        "pal.gif": Image.fromarray(gray).convert("P"),
        "cmyk.jpg": Image.fromarray(gray).convert("CMYK"),
    }
    for name, image in files.items():
        image.save(tmp_path / name, quality=100)
        data = tf.constant((tmp_path / name).read_bytes())
        for channels in (1, 3):
            decode = preprocess.get_preprocess_fn(
                f"decode(channels={channels})")
            got = decode({"image": data})["image"].numpy().astype(int)
            assert got.shape == (9, 7, channels), name
            # Lossless files hold `gray` itself (16 bits scaled to 8); for
            # the JPEG and the palette GIF, what PIL reads from the file.
            want = gray
            if name in ("cmyk.jpg", "pal.gif"):
                want = np.asarray(Image.open(tmp_path / name).convert("L"))
            diff = np.abs(got - want[..., None].astype(int)).max()
            assert diff <= (8 if name == "cmyk.jpg" else 1), (
                name, channels, diff)


def test_one_channel_of_color_files_is_luma(tmp_path):
    rgb = np.random.RandomState(0).randint(0, 256, (8, 8, 3), np.uint8)
    luma = np.asarray(Image.fromarray(rgb).convert("L"), np.int64)
    decode = preprocess.get_preprocess_fn("decode(channels=1)")
    for fmt, name in (("BMP", "x.bmp"), ("PNG", "x.png"),
                      ("WEBP", "x.webp")):
        path = tmp_path / name
        Image.fromarray(rgb).save(path, fmt, lossless=True)
        got = decode({"image": tf.constant(path.read_bytes())})["image"]
        diff = np.abs(got.numpy()[..., 0].astype(np.int64) - luma)
        assert diff.max() <= 1, fmt


def test_holdout_split_is_per_class_disjoint_and_seeded():
    labels = np.repeat([0, 1, 2], [10, 4, 2])
    parts = image_files.holdout_split(labels, 0.25, seed=0)
    assert not set(parts["labeled"]) & set(parts["validation"])
    assert len(parts["labeled"]) + len(parts["validation"]) == len(labels)
    held = np.bincount(labels[parts["validation"]], minlength=3)
    np.testing.assert_array_equal(held, [2, 1, 1])
    again = image_files.holdout_split(labels, 0.25, seed=0)
    np.testing.assert_array_equal(again["validation"], parts["validation"])
    with pytest.raises(errors.DataError, match="class 1 has 1 image"):
        image_files.holdout_split([0, 0, 1], 0.5)


def test_folder_holdout_through_make_source(tree):
    def count(part):
        return sources.count_records(ml_collections.ConfigDict(dict(
            kind="folder", root=tree["labeled"], select=dict(
                holdout_fraction=0.25, seed=0, part=part))))

    assert (count("labeled"), count("validation")) == (9, 3)
