"""Severity constants of the 15 ImageNet-C corruptions, two tables.

Copied value for value from hendrycks/robustness:

* "imagenet": `ImageNet-C/create_c/make_imagenet_c.py` (224x224 images,
  the released ImageNet-C).
* "cifar": `ImageNet-C/create_c/make_cifar_c.py` (32x32 images, the
  released CIFAR-10-C / CIFAR-100-C).

The tables are kept apart on purpose: the PyPI `imagecorruptions` wheel
applies the ImageNet constants to every image size, which does not
reproduce CIFAR-10-C (e.g. gaussian_noise sigma .08-.38 vs .04-.10).
Pixel-valued constants (blur radii, elastic displacements) are absolute and
are not rescaled for other image sizes: use "cifar" for small images and
"imagenet" for ~224 px images.

Tuple layouts per corruption (one entry per severity 1..5):
    gaussian_noise     sigma on the [0, 1] scale
    shot_noise         Poisson rate (photons per unit intensity)
    impulse_noise      salt-and-pepper amount
    defocus_blur       (disk radius, anti-alias sigma)
    glass_blur         (gaussian sigma, max shuffle delta, iterations)
    motion_blur        (radius, sigma); angle ~ U(-45, 45)
    zoom_blur          array of zoom factors
    snow               (loc, scale, zoom, threshold, blur radius,
                        blur sigma, image blend)
    frost              (image weight, frost weight)
    fog                (fog weight, plasma wibble decay)
    brightness         added HSV value
    contrast           contrast factor
    elastic_transform  (alpha, sigma, affine jitter) in pixels
    pixelate           downscale factor
    jpeg_compression   JPEG quality
"""

import numpy as np

# zoom_blur keeps the references' np.arange expressions; float steps make
# some of them include the end point (np.arange(1, 1.06, 0.01) has 7 zooms,
# 1.06 included), exactly as when the released data were generated.
# make_cifar_c.py writes its elastic constants as multiples of IMSIZE = 32;
# make_imagenet_c.py uses 244 where it meant 224 (its own comment says the
# typo is harmless); both are kept verbatim.
_CIFAR_IMSIZE = 32

IMAGENET = {
    "gaussian_noise": (.08, .12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (.03, .06, .09, 0.17, 0.27),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2),
                   (1.5, 4, 2)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": (np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
                  np.arange(1, 1.21, 0.02), np.arange(1, 1.26, 0.02),
                  np.arange(1, 1.31, 0.03)),
    "snow": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8),
             (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
             (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
             (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
             (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    "brightness": (.1, .2, .3, .4, .5),
    "contrast": (0.4, .3, .2, .1, .05),
    "elastic_transform": ((244 * 2, 244 * 0.7, 244 * 0.1),
                          (244 * 2, 244 * 0.08, 244 * 0.2),
                          (244 * 0.05, 244 * 0.01, 244 * 0.02),
                          (244 * 0.07, 244 * 0.01, 244 * 0.02),
                          (244 * 0.12, 244 * 0.01, 244 * 0.02)),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "jpeg_compression": (25, 18, 15, 10, 7),
}

CIFAR = {
    "gaussian_noise": (0.04, 0.06, .08, .09, .10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (.01, .02, .03, .05, .07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2),
                     (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
                   (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": (np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01),
                  np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.01),
                  np.arange(1, 1.26, 0.01)),
    "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95),
             (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (.05, .1, .15, .2, .3),
    "contrast": (.75, .5, .4, .3, 0.15),
    "elastic_transform": (
        (_CIFAR_IMSIZE * 0, _CIFAR_IMSIZE * 0, _CIFAR_IMSIZE * 0.08),
        (_CIFAR_IMSIZE * 0.05, _CIFAR_IMSIZE * 0.2, _CIFAR_IMSIZE * 0.07),
        (_CIFAR_IMSIZE * 0.08, _CIFAR_IMSIZE * 0.06, _CIFAR_IMSIZE * 0.06),
        (_CIFAR_IMSIZE * 0.1, _CIFAR_IMSIZE * 0.04, _CIFAR_IMSIZE * 0.05),
        (_CIFAR_IMSIZE * 0.1, _CIFAR_IMSIZE * 0.03, _CIFAR_IMSIZE * 0.03)),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
}

TABLES = {"imagenet": IMAGENET, "cifar": CIFAR}
