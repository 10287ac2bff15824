"""Train, eval and mixed pipelines: batch sizes, teacher view, per-host
shards, seeded order, the kept eval remainder."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import pipeline
from noisy_student_tf.data import readers
from tests.data import records

LABELED_PP = 'decode|resize(24)|flip_lr|keep("image", "label", "id")'
UNLABELED_PP = 'decode|resize(24)|keep("image", "probabilities", "id")'
TEACHER_PP = 'decode|resize(40)|keep("image")'
EVAL_PP = 'decode|keep("image", "label", "id")'


def _array_source(n, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return readers.array_source(images, np.arange(n) % 10)


def _context(k):
    return tf.distribute.InputContext(num_input_pipelines=2,
                                      input_pipeline_id=k,
                                      num_replicas_in_sync=2)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    records.write_labeled_shards(root / "labeled", [16, 16])
    records.write_pseudo_label_shards(root / "unlabeled", [20, 20, 20])
    return {"labeled": str(root / "labeled" / "train-*"),
            "unlabeled": str(root / "unlabeled" / "train-*")}


def _mixed(shards, **kwargs):
    return pipeline.make_mixed_dataset(
        readers.tfrecord_source(shards["labeled"]),
        readers.pseudo_label_source(shards["unlabeled"], 10),
        labeled_pp=LABELED_PP, unlabeled_pp=UNLABELED_PP,
        shuffle_buffer=64, **kwargs)


@pytest.mark.parametrize("batch_size, ratio, unlabeled", [
    (8, 1.5, 12), (8, 3, 24), (3, 0.5, 2), (4, 1, 4)])
def test_unlabeled_batch_is_ceil_of_ratio(batch_size, ratio, unlabeled):
    assert pipeline.unlabeled_batch_size(batch_size, ratio) == unlabeled


def test_mixed_batch_sizes_and_teacher_view(shards):
    batch = next(iter(_mixed(shards, batch_size=8, unlabel_ratio=1.5,
                             teacher_pp=TEACHER_PP)))
    labeled, unlabeled = batch["labeled"], batch["unlabeled"]
    assert labeled["image"].shape == (8, 24, 24, 3)
    assert labeled["label"].shape == (8,)
    assert unlabeled["image"].shape == (12, 24, 24, 3)
    # The teacher's clean view of the same images, at its own resolution.
    assert unlabeled["teacher_image"].shape == (12, 40, 40, 3)
    assert unlabeled["probabilities"].shape == (12, 10)
    np.testing.assert_allclose(
        tf.reduce_sum(unlabeled["probabilities"], -1), 1.0, rtol=1e-5)


def test_mixed_without_teacher_has_no_teacher_view(shards):
    batch = next(iter(_mixed(shards, batch_size=4, unlabel_ratio=2)))
    assert "teacher_image" not in batch["unlabeled"]
    assert batch["unlabeled"]["image"].shape[0] == 8
    with pytest.raises(ValueError, match="unlabel_ratio"):
        _mixed(shards, batch_size=4, unlabel_ratio=0)


def test_mixed_per_host_shards_are_disjoint(shards):
    # Global batch 8 -> 4 per replica; 3 steps stay within one epoch of
    # each host's half (16 labeled and 30 unlabeled records per host).
    seen = []
    for k in range(2):
        ds = _mixed(shards, batch_size=8, unlabel_ratio=1.5,
                    input_context=_context(k))
        ids = {"labeled": [], "unlabeled": []}
        for batch in ds.take(3):
            assert batch["labeled"]["image"].shape[0] == 4
            assert batch["unlabeled"]["image"].shape[0] == 6
            for part in ids:
                ids[part].extend(batch[part]["id"].numpy().tolist())
        seen.append(ids)
    for part in ("labeled", "unlabeled"):
        assert len(set(seen[0][part])) == len(seen[0][part])
        assert not set(seen[0][part]) & set(seen[1][part])


def test_train_per_host_shards_cover_the_source():
    source = _array_source(32)
    ids = []
    for k in range(2):
        ds = pipeline.make_train_dataset(source, 'keep("image", "id")', 8,
                                         input_context=_context(k),
                                         repeat=False, shuffle_buffer=32)
        host = [i for b in ds for i in b["id"].numpy()]
        assert len(host) == 16
        ids.append(set(host))
    assert not ids[0] & ids[1]
    assert ids[0] | ids[1] == set(range(32))


def _first_ids(seed, make):
    return next(iter(make(seed)))["id"].numpy().tolist()


def test_seeded_shuffle_is_reproducible_and_seed_dependent(shards):
    def make(seed):
        return pipeline.make_train_dataset(
            readers.tfrecord_source(shards["labeled"]), EVAL_PP, 8,
            seed=seed, shuffle_buffer=32, deterministic=True)

    first = _first_ids(0, make)
    assert _first_ids(0, make) == first
    assert _first_ids(1, make) != first
    assert sorted(first) != first  # shuffled, not file order


def test_seeded_mixed_dataset_is_reproducible(shards):
    def make(seed):
        return _mixed(shards, batch_size=4, unlabel_ratio=2, seed=seed,
                      deterministic=True).map(
            lambda b: {"id": tf.concat([b["labeled"]["id"],
                                        b["unlabeled"]["id"]], 0)})

    first = _first_ids(5, make)
    assert _first_ids(5, make) == first
    assert _first_ids(6, make) != first


def test_train_batches_drop_the_remainder():
    ds = pipeline.make_train_dataset(_array_source(21), 'keep("image")', 8,
                                     repeat=False)
    assert [b["image"].shape[0] for b in ds] == [8, 8]


def test_eval_keeps_order_and_the_last_partial_batch():
    ds = pipeline.make_eval_dataset(_array_source(21), 'keep("image", "id")',
                                    8)
    batches = [b["id"].numpy().tolist() for b in ds]
    assert [len(b) for b in batches] == [8, 8, 5]
    assert sum(batches, []) == list(range(21))


def test_eval_per_host_halves(shards):
    ids = []
    for k in range(2):
        ds = pipeline.make_eval_dataset(
            readers.tfrecord_source(shards["labeled"]), EVAL_PP, 6,
            input_context=_context(k))
        sizes = [b["id"].shape[0] for b in ds]
        assert sizes == [3] * 5 + [1]  # 16 records, 3 per replica
        ids.append({i for b in ds for i in b["id"].numpy()})
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == 32
