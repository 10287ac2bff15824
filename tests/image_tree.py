"""Builds small trees of real image files from Fashion-MNIST with PIL.

`make_tree(root)` writes what a user's own data looks like: class folders
(`labeled/<class>/*.png`), an eval tree with the same classes, and a nested
unlabeled pile with odd files (a `.txt`, a corrupt `.jpg`, upper-case
`.PNG`, grayscale / RGBA / CMYK / 16-bit / 1x1 images).
"""

import os

import numpy as np
from PIL import Image

from noisy_student_tf.data import fashion_mnist

CLASSES = ("ankle_boot", "bag", "trouser")  # Fashion-MNIST labels 9, 8, 1
_LABELS = (9, 8, 1)


def _images(split, label, count, offset=0):
    images, labels = fashion_mnist.load_arrays(split)
    return images[labels == label][offset:offset + count, :, :, 0]


def _save(array, path, mode="L", fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array)
    if mode == "I;16":
        image = Image.fromarray(array.astype(np.uint16) * 257)
    elif mode != "L":
        image = image.convert(mode)
    image.save(path, fmt)


def make_tree(root, per_class=12, eval_per_class=6):
    """Writes labeled/, eval/ and pile/ under `root`; returns a dict.

    Returns:
      {"labeled", "eval", "pile": directories, "decodable": the number of
      pile files that decode, "pile_files": their paths}.
    """
    labeled = os.path.join(root, "labeled")
    evaluation = os.path.join(root, "eval")
    pile = os.path.join(root, "pile")
    for name, label in zip(CLASSES, _LABELS):
        for i, image in enumerate(_images("train", label, per_class)):
            _save(image, os.path.join(labeled, name, f"{i}.png"))
        for i, image in enumerate(_images("test", label, eval_per_class)):
            _save(image, os.path.join(evaluation, name, f"{i}.png"))
    good = []
    for index, label in enumerate(_LABELS):
        images = _images("train", label, 8, offset=per_class)
        # Every kind of file a real pile holds, at several depths.
        kinds = [("a/gray.png", "L", None), ("a/b/rgba.png", "RGBA", None),
                 ("a/b/c/cmyk.jpg", "CMYK", "JPEG"),
                 ("deep16.png", "I;16", None), ("UPPER.PNG", "RGB", "PNG"),
                 ("x/photo.JPEG", "RGB", "JPEG"), ("x/pal.gif", "P", "GIF"),
                 ("x/la.png", "LA", None)]
        for image, (name, mode, fmt) in zip(images, kinds):
            path = os.path.join(pile, f"c{index}", name)
            _save(image, path, mode, fmt)
            good.append(path)
    tiny = os.path.join(pile, "tiny", "one_pixel.png")
    _save(np.full((1, 1), 200, np.uint8), tiny)
    good.append(tiny)
    with open(os.path.join(pile, "notes.txt"), "w") as handle:
        handle.write("not an image\n")
    with open(os.path.join(pile, "a_corrupt.jpg"), "wb") as handle:
        handle.write(b"\xff\xd8\xff\xe0" + b"garbage" * 20)
    return {"labeled": labeled, "eval": evaluation, "pile": pile,
            "decodable": len(good), "pile_files": sorted(good)}
