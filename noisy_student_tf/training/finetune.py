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


def finetune_config(config, last_stage, model_path):
    """Trainer config for the finetune stage of an experiment.

    `config.finetune` gives image_size, freeze_blocks, pp (labeled/eval at
    the new size, no augmentation), total_steps and optimizer overrides;
    the architecture is the last stage's.
    """
    ft = config.finetune.to_dict()
    ft.pop("enabled", None)
    model = last_stage.model.to_dict()
    model.update(image_size=ft.pop("image_size"), init=model_path,
                 init_skip_head=False)
    stage = dict(model=model, unlabel_ratio=0, teacher=None)
    stage.update(ft)
    return common.stage_config(config, ml_collections.ConfigDict(stage))
