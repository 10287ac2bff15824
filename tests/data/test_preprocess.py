"""pp-string parsing, the op registry and clear errors."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import preprocess
from noisy_student_tf.data import registry

# The contract's op names; configs and other modules rely on them.
CONTRACT_OPS = (
    "decode", "inception_crop", "center_crop", "resize", "pad_to_size",
    "flip_lr", "pad_crop", "cutout", "normalize", "value_range", "to_rgb",
    "keep", "onehot", "randaug",
)


def test_registry_lists_contract_ops_and_names_known_ops_on_error():
    assert set(CONTRACT_OPS) <= set(registry.list_ops())
    with pytest.raises(ValueError, match="Unknown preprocessing op 'nope'"
                       r".*decode.*randaug"):
        registry.get_op("nope")


_FIRST_LOOKUPS_FROM_THREADS = textwrap.dedent("""
    import threading
    import tensorflow
    from noisy_student_tf.data import registry
    barrier = threading.Barrier(8)
    failures = []
    def look_up():
        barrier.wait()
        try:
            registry.get_op("pad_to_size")
        except ValueError as e:
            failures.append(str(e))
    threads = [threading.Thread(target=look_up) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(len(failures), failures[:1])
""")


def test_first_lookups_from_many_threads_all_find_every_op():
    # Beam's DirectRunner looks ops up from several threads of a fresh
    # process; a registry marked loaded before its modules were imported
    # failed 7 of 8 such lookups. A fresh interpreter is needed because this
    # test process has loaded the ops long ago.
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_LOOKUPS_FROM_THREADS],
        capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stdout


def test_register_rejects_a_second_op_under_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("decode")(lambda: None)
    with pytest.raises(ValueError, match="identifier"):
        registry.register("not-a-name")


def test_parse_calls_bare_names_kwargs_and_pipes_inside_strings():
    specs = preprocess.parse_pp_string(
        'decode(channels=1)|pad_to_size(32)|flip_lr|randaug(2, 9)|\n'
        '  normalize("fashion_mnist")|keep("image", "a|b")')
    assert [s.name for s in specs] == [
        "decode", "pad_to_size", "flip_lr", "randaug", "normalize", "keep"]
    assert specs[0].kwargs == {"channels": 1} and specs[0].args == ()
    assert specs[3].args == (2, 9)
    assert specs[5].args == ("image", "a|b")
    assert preprocess.parse_pp_string("resize((24, 32), method='area')")[
        0].args == ((24, 32),)
    assert preprocess.parse_pp_string("normalize(-1.5, 2)")[0].args == (
        -1.5, 2)
    assert preprocess.parse_pp_string("  ") == []


def test_op_spec_str_round_trips():
    pp = "decode(channels=1)|flip_lr|normalize(\"svhn\")|keep('a', 'b|c')"
    specs = preprocess.parse_pp_string(pp)
    again = preprocess.parse_pp_string("|".join(str(s) for s in specs))
    assert again == specs
    assert str(specs[1]) == "flip_lr()"


def test_validate_returns_op_names_without_running():
    pp = ('decode|inception_crop(224)|flip_lr|randaug(2, 15)|'
          'normalize("imagenet")')
    assert preprocess.validate_pp_string(pp) == [
        "decode", "inception_crop", "flip_lr", "randaug", "normalize"]


@pytest.mark.parametrize("pp,pattern", [
    ("decode|frobnicate(3)", r"Unknown preprocessing op 'frobnicate'"),
    ("decode|resize(1, 2, 3, 4)", r"Bad arguments for op resize\(1, 2, 3, 4\)"
                                  r".*too many positional"),
    ("decode|resize(32, colour=1)", r"resize.*unexpected keyword.*colour"),
    ("decode|resize()", r"resize.*missing a required argument: 'size'"),
    ("decode|resize(size)", r"Argument 'size' of op 'resize' is not a "
                            r"Python literal"),
    ("decode|resize(__import__('os'))", r"not a Python literal"),
    ("decode||resize(32)", r"Cannot parse pp string"),
    ("decode|resize(32", r"Cannot parse pp string"),
    ("decode|resize(*[32])", r"\* or \*\* arguments"),
    ("decode|resize('big')", r"Bad arguments for op resize\('big'\)"),
    ("decode|normalize('cifar')", r"Unknown normalize preset 'cifar'"),
    ("resize(8, method='bicubik')", r"Unknown resize method 'bicubik'"),
    ("decode|1 + 2", r"Cannot parse op '1 \+ 2'"),
    ("decode|x.y(1)", r"Cannot parse op 'x.y\(1\)'"),
])
def test_bad_pp_strings_raise_value_error_naming_op_and_string(pp, pattern):
    for check in (preprocess.validate_pp_string, preprocess.get_preprocess_fn):
        with pytest.raises(ValueError, match=pattern) as info:
            check(pp)
        assert repr(pp) in str(info.value)


def test_empty_pp_string_is_identity_and_non_dict_is_rejected():
    fn = preprocess.get_preprocess_fn("")
    data = {"image": tf.zeros([2, 2, 1], tf.uint8)}
    assert fn(data) is data
    with pytest.raises(ValueError, match="expects a dict"):
        preprocess.get_preprocess_fn("flip_lr")(tf.zeros([2, 2, 1]))


def test_missing_key_names_the_op_and_the_available_keys():
    fn = preprocess.get_preprocess_fn("resize(8, key='mask')")
    with pytest.raises(KeyError, match="'resize' reads 'mask'.*image"):
        fn({"image": tf.zeros([4, 4, 3], tf.uint8)})


def test_fashion_mnist_train_string_end_to_end_in_tf_data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    encoded = [tf.io.encode_png(im).numpy() for im in images]
    ds = tf.data.Dataset.from_tensor_slices({
        "image": encoded, "label": np.arange(4, dtype=np.int64),
        "id": np.arange(4, dtype=np.int64) + 100,
        "probabilities": np.eye(4, 10, dtype=np.float32)})
    pp = ('decode(channels=1)|pad_to_size(32)|flip_lr|'
          'randaug(2, 9, cutout_const=4, translate_const=4)|'
          'normalize("fashion_mnist")|keep("image", "label", "probabilities")')
    ds = ds.map(preprocess.get_preprocess_fn(pp)).batch(4)
    spec = ds.element_spec
    assert sorted(spec) == ["image", "label", "probabilities"]
    assert spec["image"].shape.as_list() == [None, 32, 32, 1]
    assert spec["image"].dtype == tf.float32
    batch = next(iter(ds))
    np.testing.assert_array_equal(batch["label"], np.arange(4))
    np.testing.assert_array_equal(batch["probabilities"],
                                  np.eye(4, 10, dtype=np.float32))
