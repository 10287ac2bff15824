"""Resolution-discrepancy finetune (FixRes-style, Noisy Student section 3).

After training at a low resolution, the model is rebuilt at the larger test
resolution, loaded with the trained (EMA) weights, and finetuned briefly on
unaugmented labeled images with the stem and the first K blocks frozen:
not trainable, and batch norm and stochastic depth in inference mode
(noisystudent `--fix_layer_num`). Head conv/BN and logits stay trainable.
"""

import ml_collections

from noisy_student_tf.configs import common


def freeze_stem_and_blocks(model, num_blocks):
    """Freezes the stem and blocks [0, num_blocks) of an EfficientNet/Mixer.

    Keras 3 runs a non-trainable BatchNormalization in inference mode, and
    our stochastic-depth layers skip dropping when not trainable, so this
    is exactly the reference's freezing.

    Raises:
      ValueError: the model has no named stem/blocks, or K is too large.
    """
    stem = getattr(model, "stem_layer_names", None)
    blocks = getattr(model, "block_names", None)
    if stem is None or blocks is None:
        raise ValueError(f"model {model.name!r} has no stem/block endpoints "
                         "to freeze")
    if not 0 <= num_blocks <= len(blocks):
        raise ValueError(f"freeze_blocks={num_blocks} not in [0, "
                         f"{len(blocks)}] for {model.name!r}")
    for name in tuple(stem) + tuple(blocks[:num_blocks]):
        model.get_layer(name).trainable = False


def finetune_config(config, base_stage, model_path, **extra):
    """Trainer config of a finetune stage: labels only, from `model_path`.

    The architecture and eval pp are `base_stage`'s (the last student, or
    a method's student), `config.finetune` is merged on top: the Noisy
    Student resolution finetune gives image_size (the test resolution),
    freeze_blocks, pp at the new size and a short schedule; Meta Pseudo
    Labels' gives its own schedule and pp. `extra` is the caller's last
    word (e.g. the validation split).
    """
    ft = config.finetune.to_dict()
    ft.pop("enabled", None)
    model = base_stage.model.to_dict()
    if "image_size" in ft:  # a new input size: the model is rebuilt
        model["image_size"] = ft.pop("image_size")
    stage = dict(model=model, pp=dict(eval=base_stage.pp.eval),
                 unlabel_ratio=0, teacher=None)
    common.deep_update(stage, ft)
    stage["model"].update(init=model_path, init_skip_head=False)
    return common.stage_config(config, ml_collections.ConfigDict(stage),
                               **extra)
