"""Filter/balance: thresholds, exact copy counts, end to end on shards."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import features
from noisy_student_tf.data import readers
from noisy_student_tf.data import sources
from noisy_student_tf.labeling import filtering
from noisy_student_tf.labeling import tfrecord_io


def test_thresholds_walk_down_until_target_or_min():
    hist = np.zeros((3, 101), np.int64)
    hist[0, 95] = 50      # class 0: 50 very confident...
    hist[0, 80] = 100     # ...then 100 at 0.80 -> reaches 120 there
    hist[1, 50] = 10      # class 1: only 10 above 0.3 -> min threshold
    hist[1, 10] = 99      # below min_threshold: never counted
    got = filtering.select_thresholds(hist, num_image=120, min_threshold=0.3)
    assert got[0] == (0.80, 150)
    assert got[1] == (0.30, 10)
    assert got[2] == (0.30, 0)


def test_use_all_walks_down_to_min_threshold():
    # filter_unlabel.py: with use_all the num_image stop is skipped, so each
    # class's threshold is min_threshold and its total counts every image
    # above it (class 0 would stop at 0.80 with 150 images otherwise).
    hist = np.zeros((2, 101), np.int64)
    hist[0, 95], hist[0, 80], hist[0, 40], hist[0, 20] = 50, 100, 30, 7
    hist[1, 60] = 5
    got = filtering.select_thresholds(hist, num_image=120, min_threshold=0.3,
                                   use_all=True)
    assert got == [(0.30, 180), (0.30, 5)]
    # Kept exactly once whatever num_image / total (or the coin) says.
    assert [filtering.copies_for(p, 0, got, 120, 2.0, draw, use_all=True)
            for p, draw in ((0.95, 0.9), (0.41, 0.0), (0.30, 0.5),
                            (0.29, 0.0))] == [1, 1, 1, 0]


def test_bins_put_edges_in_the_right_bin():
    np.testing.assert_array_equal(
        filtering._bins([0.3, 0.2999, 1.0, 0.0, 0.995]), [30, 29, 100, 0, 99])


def test_record_coin_is_splitmix64_of_seed_and_id():
    # SplitMix64's published first output for state 0 is
    # 0xE220A8397B1DCDAF; the coin is its top 53 bits over 2**53.
    assert filtering.record_uniform(0, 0) == \
        (0xE220A8397B1DCDAF >> 11) / 2.0**53
    draws = filtering.record_uniform(7, np.arange(100_000))
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert draws.mean() == pytest.approx(0.5, abs=0.005)
    # Only (seed, id) matter: the same id draws the same coin alone or in
    # any batch, and another seed draws another coin.
    assert filtering.record_uniform(7, 123) == draws[123]
    assert filtering.record_uniform(8, 123) != draws[123]


def test_copies_subsample_and_duplicate_exactly_in_expectation():
    thresholds = [(0.5, 200), (0.3, 40), (0.3, 0)]
    coins = filtering.record_uniform(0, np.arange(4000))
    # num_image 100: class 0 keeps each with p=0.5, class 1 gets 2.5 copies.
    draws0 = [filtering.copies_for(0.9, 0, thresholds, 100, 2.0, u)
              for u in coins]
    draws1 = [filtering.copies_for(0.4, 1, thresholds, 100, 2.0, u)
              for u in coins]
    assert set(draws0) == {0, 1} and set(draws1) == {2, 3}
    assert np.mean(draws0) == pytest.approx(0.5, abs=0.03)
    assert np.mean(draws1) == pytest.approx(2.5, abs=0.03)
    # The extra copy goes exactly to the coins under the fraction.
    assert [filtering.copies_for(0.9, 0, thresholds, 100, 2.0, u)
            for u in (0.0, 0.4999, 0.5, 0.99)] == [1, 1, 0, 0]
    assert filtering.copies_for(0.45, 0, thresholds, 100, 2.0, 0.0) == 0
    capped = [filtering.copies_for(0.4, 1, thresholds, 100, 2.0, u,
                                upsample=False) for u in coins[:50]]
    assert set(capped) == {1}


def _write_predictions(directory, shard, count, probabilities, ids):
    with tfrecord_io.AtomicShardWriter(directory, tfrecord_io.PREDICTIONS,
                                       shard, count) as writer:
        for probs, record_id in zip(probabilities, ids):
            writer.write(features.prediction_example(probs, record_id))
        writer.commit({"mean_confidence": 0.0})


def _filter_sixty(tmp_path, monkeypatch, num_shards=2, num_image=40,
                  **options):
    """Filters 60 hand-made predictions over 3 classes (2 shards)."""
    rng = np.random.RandomState(1)
    n, classes = 60, 3
    images = rng.randint(0, 255, (n, 8, 8, 1)).astype(np.uint8)
    probs = np.zeros((n, classes), np.float32)
    probs[:40] = [0.05, 0.9, 0.05]    # 40 confident class-1 predictions
    probs[40:50] = [0.25, 0.25, 0.5]  # 10 unsure class-2 predictions
    probs[50:] = [0.25, 0.45, 0.30]   # 10 class-1 predictions at 0.45
    labels = np.zeros(n)
    for shard in range(num_shards):
        ids = np.arange(n)[shard::num_shards]
        _write_predictions(str(tmp_path / "labels"), shard, num_shards,
                           probs[ids], ids)
    monkeypatch.setattr(
        sources, "make_source", lambda config, shard=None:
        readers.array_source(images, labels, shard=shard))
    stats = filtering.filter_and_balance(
        None, str(tmp_path / "labels"), str(tmp_path / "filter"),
        num_shards, classes, min_threshold=0.3, num_image=num_image,
        **options)
    records = list(tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(
        filtering.filtered_pattern(str(tmp_path / "filter"))))).map(
            lambda s: features.parse_pseudo_label(s, classes)))
    return stats, records, images, probs


def test_filter_and_balance_counts_are_exact(tmp_path, monkeypatch):
    classes = 3
    stats, records, images, probs = _filter_sixty(tmp_path, monkeypatch,
                                                  plots=True)
    # Class 1: 40 images at 0.90 reach the target at threshold 0.90, so the
    # ten at 0.45 are dropped and each kept image is written once. Class 2:
    # only 10 images down to 0.30, each duplicated 40 / 10 = 4 times.
    assert stats["thresholds"] == [0.3, 0.9, 0.3]
    assert stats["per_class_before"] == [0, 50, 10]
    assert stats["per_class_after"] == [0, 40, 40]
    assert len(records) == 80
    ids = [int(r["id"]) for r in records]
    assert sorted(set(ids)) == list(range(50))
    assert all(ids.count(i) == 1 for i in range(40))
    assert all(ids.count(i) == 4 for i in range(40, 50))
    for record in records:
        record_id = int(record["id"])
        np.testing.assert_allclose(record["probabilities"], probs[record_id])
        assert int(record["label"]) == probs[record_id].argmax()
        assert float(record["prob"]) == pytest.approx(probs[record_id].max())
        decoded = tf.io.decode_png(record["image"]).numpy()
        np.testing.assert_array_equal(decoded, images[record_id])
    assert (tmp_path / "filter" / "class_counts.png").exists()
    assert (tmp_path / "filter" / "confidence_hist.png").exists()


def test_use_all_keeps_every_image_above_min_threshold_once(tmp_path,
                                                           monkeypatch):
    stats, records, _, _ = _filter_sixty(tmp_path, monkeypatch,
                                         use_all=True, plots=False)
    # Not capped at num_image=40: class 1's ten 0.45 images are kept too,
    # and class 2's ten are not duplicated.
    assert stats["thresholds"] == [0.3, 0.3, 0.3]
    assert stats["per_class_after"] == [0, 50, 10]
    assert sorted(int(r["id"]) for r in records) == list(range(60))


def test_kept_records_depend_on_seed_and_id_not_on_sharding(tmp_path,
                                                             monkeypatch):
    # num_image 20 for class 1's 40 images at 0.90: each is kept with
    # probability 1/2, decided by its own coin, so 1, 2 or 3 shards keep
    # exactly the same images: those whose coin is under 1/2.
    kept = []
    for shards in (1, 2, 3):
        _, records, _, _ = _filter_sixty(
            tmp_path / str(shards), monkeypatch, num_shards=shards,
            num_image=20, plots=False, seed=5)
        kept.append(sorted(int(r["id"]) for r in records
                           if int(r["label"]) == 1))
    coins = filtering.record_uniform(5, np.arange(40))
    assert kept[0] == kept[1] == kept[2] == list(np.flatnonzero(coins < 0.5))


def test_mismatched_source_and_predictions_are_refused(tmp_path,
                                                      monkeypatch):
    images = np.zeros((4, 8, 8, 1), np.uint8)
    _write_predictions(str(tmp_path / "labels"), 0, 1,
                       np.full((4, 2), 0.5, np.float32), [0, 1, 7, 3])
    monkeypatch.setattr(
        sources, "make_source", lambda config, shard=None:
        readers.array_source(images, np.zeros(4), shard=shard))
    with pytest.raises(sources.DataError, match="does not match"):
        filtering.filter_and_balance(
            None, str(tmp_path / "labels"), str(tmp_path / "f"), 1, 2,
            min_threshold=0.0, num_image=2, plots=False)
