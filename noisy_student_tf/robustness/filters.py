"""Image filters shared by the corruption and perturbation generators.

Everything here works on float images in [0, 1], batched as [N, H, W, C]
unless a docstring says otherwise. The filters re-create the OpenCV,
scikit-image and ImageMagick calls of hendrycks/robustness
(`ImageNet-C/create_c/make_*_c.py`) with NumPy, SciPy and TensorFlow only,
so the project needs neither cv2, skimage nor Wand.
"""

import numpy as np
import tensorflow as tf
from scipy import ndimage

# ITU-R 601 luma, the weights of cv2.COLOR_RGB2GRAY and PIL's "L" mode.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def luminance(x: np.ndarray) -> np.ndarray:
    """Returns the [..., 1] luma of a [..., C] image with C in {1, 3}."""
    if x.shape[-1] == 1:
        return x
    return (x @ _LUMA)[..., None]


def brighten(x: np.ndarray, amount) -> np.ndarray:
    """Adds `amount` to the HSV value of a [..., C] image in [0, 1].

    V = max over channels; converting back with the new V scales every
    channel by V' / V, exactly what skimage's rgb2hsv -> hsv2rgb round trip
    in the reference does, without the colour-space conversion.

    Args:
        x: float image or batch in [0, 1], channels last.
        amount: value shift, a scalar or broadcastable to [..., 1].

    Returns:
        The brightened float array in [0, 1].
    """
    v = x.max(axis=-1, keepdims=True)
    v_new = np.clip(v + amount, 0, 1)
    out = np.where(v > 0, x * v_new / np.maximum(v, 1e-12), v_new)
    return np.clip(out, 0, 1)


def gaussian_hw(x: np.ndarray, sigma: float, mode: str = "nearest",
                truncate: float = 4.0) -> np.ndarray:
    """Gaussian blur over H and W of a [N, H, W, C] batch.

    Defaults are those of `skimage.filters.gaussian` (mode 'nearest',
    truncate 4), which the reference calls.
    """
    return ndimage.gaussian_filter(
        x, sigma=(0, sigma, sigma, 0), mode=mode, truncate=truncate)


def _cv2_gaussian_1d(ksize: int, sigma: float) -> np.ndarray:
    """The kernel of cv2.getGaussianKernel(ksize, sigma) for sigma > 0."""
    t = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
    g = np.exp(-t**2 / (2 * sigma**2))
    return (g / g.sum()).astype(np.float32)


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """Anti-aliased disk of the reference `disk()` (defocus blur).

    Args:
        radius: disk radius in pixels.
        alias_blur: sigma of the small Gaussian that anti-aliases the disk.

    Returns:
        A normalised [K, K] float32 kernel.
    """
    if radius <= 8:
        coords, ksize = np.arange(-8, 8 + 1), 3
    else:
        coords, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(coords, coords)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    # cv2.GaussianBlur's default border is REFLECT_101 == scipy 'mirror'.
    g = _cv2_gaussian_1d(ksize, alias_blur)
    disk = ndimage.convolve1d(disk, g, axis=0, mode="mirror")
    return ndimage.convolve1d(disk, g, axis=1, mode="mirror")


def filter2d(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """cv2.filter2D per channel: correlation with REFLECT_101 borders.

    Runs as a TF depthwise convolution because a 17x17 kernel over a
    10k-image batch is slow in scipy.ndimage.

    Args:
        x: float [N, H, W, C] batch; H and W larger than half the kernel.
        kernel: [K, K] kernel.

    Returns:
        The filtered float32 batch.
    """
    k = kernel.shape[0]
    pad = k // 2
    channels = x.shape[-1]
    # TF 'REFLECT' excludes the edge pixel, i.e. OpenCV's REFLECT_101.
    padded = tf.pad(tf.convert_to_tensor(x, tf.float32),
                    [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    weights = np.tile(kernel[:, :, None, None], (1, 1, channels, 1))
    out = tf.nn.depthwise_conv2d(padded, weights.astype(np.float32),
                                 strides=[1, 1, 1, 1], padding="VALID")
    return out.numpy()


def motion_blur(x: np.ndarray, radius: float, sigma: float,
                angles: np.ndarray) -> np.ndarray:
    """ImageMagick `MagickMotionBlurImage` re-implemented as a line kernel.

    ImageMagick averages `width = 2 * ceil(radius) + 1` taps at offsets
    round(i * (cos a, sin a)), i = 0..width-1 (column, row), weighted by a
    one-sided Gaussian exp(-i^2 / 2 sigma^2) and read with edge clamping.
    This is the same one-sided kernel without Wand; outputs differ from
    ImageMagick only by rounding.

    Args:
        x: float [N, H, W, C] batch.
        radius: blur radius in pixels.
        sigma: Gaussian sigma of the tap weights, in pixels.
        angles: [N] blur directions in degrees, one per image.

    Returns:
        The blurred float32 batch.
    """
    n, h, w, _ = x.shape
    width = int(2 * np.ceil(radius) + 1)
    taps = np.arange(width, dtype=np.float64)
    weights = np.exp(-taps**2 / (2.0 * sigma**2))
    weights /= weights.sum()
    rad = np.deg2rad(np.asarray(angles, np.float64)).reshape(n, 1)
    # ceil(v - 0.5) is ImageMagick's rounding (half rounds down).
    dcol = np.ceil(taps[None] * np.cos(rad) - 0.5).astype(int)  # [N, width]
    drow = np.ceil(taps[None] * np.sin(rad) - 0.5).astype(int)
    batch = np.arange(n)[:, None, None]
    out = np.zeros(x.shape, np.float32)
    for i in range(width):
        rows = np.clip(np.arange(h)[None] + drow[:, i:i + 1], 0, h - 1)
        cols = np.clip(np.arange(w)[None] + dcol[:, i:i + 1], 0, w - 1)
        out += weights[i] * x[batch, rows[:, :, None], cols[:, None, :]]
    return out


def _zoom_axis(x: np.ndarray, axis: int, zoom: float, size: int,
               start: int) -> np.ndarray:
    """Linear zoom of `x[start:start+size]` along `axis`, centre-trimmed.

    Same sampling as scipy.ndimage.zoom(order=1): the crop is stretched to
    round(size * zoom) samples with corner-aligned coordinates
    k * (size - 1) / (zoomed - 1); only the centre samples that survive the
    trim are computed, which makes zoom blur ~10x faster.
    """
    out_size = x.shape[axis]
    zoomed = int(round(size * zoom))
    trim = (zoomed - out_size) // 2
    coords = (np.arange(out_size) + trim) * (size - 1) / (zoomed - 1)
    i0 = np.clip(np.floor(coords).astype(int), 0, size - 2)
    frac = (coords - i0).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = out_size
    frac = frac.reshape(shape)
    lo = np.take(x, start + i0, axis=axis)
    hi = np.take(x, start + i0 + 1, axis=axis)
    return lo + frac * (hi - lo)


def clipped_zoom(x: np.ndarray, zoom_factor: float) -> np.ndarray:
    """Zooms into the centre of a [N, H, W, C] batch, keeping H x W.

    The reference `clipped_zoom` (crop ceil(H / zoom), scipy zoom with
    order 1, trim back to H) for square images, generalised to H != W.
    """
    _, h, w, _ = x.shape
    ch, cw = int(np.ceil(h / zoom_factor)), int(np.ceil(w / zoom_factor))
    x = _zoom_axis(x, 1, zoom_factor, ch, (h - ch) // 2)
    return _zoom_axis(x, 2, zoom_factor, cw, (w - cw) // 2)


def plasma_fractal(mapsize: int, wibbledecay: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1] (fog, frost texture).

    Same recursion as the reference `plasma_fractal` (itself from
    FLHerne/mapgen), with an explicit generator for determinism.

    Args:
        mapsize: side length, a power of two.
        wibbledecay: factor by which the random amplitude shrinks per level.
        rng: NumPy generator.

    Returns:
        A [mapsize, mapsize] float64 array scaled to [0, 1].
    """
    if mapsize & (mapsize - 1):
        raise ValueError(f"mapsize must be a power of two, got {mapsize}")
    grid = np.zeros((mapsize, mapsize))
    step, wibble = mapsize, 100.0

    def wibbled_mean(a):
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        # Squares: centre = mean of the four corners + noise.
        corners = grid[0:mapsize:step, 0:mapsize:step]
        acc = corners + np.roll(corners, -1, axis=0)
        acc += np.roll(acc, -1, axis=1)
        grid[half:mapsize:step, half:mapsize:step] = wibbled_mean(acc)
        # Diamonds: edge midpoints from the two corners and two centres.
        centres = grid[half:mapsize:step, half:mapsize:step]
        corners = grid[0:mapsize:step, 0:mapsize:step]
        lt = (centres + np.roll(centres, 1, axis=0)
              + corners + np.roll(corners, -1, axis=1))
        grid[0:mapsize:step, half:mapsize:step] = wibbled_mean(lt)
        tt = (centres + np.roll(centres, 1, axis=1)
              + corners + np.roll(corners, -1, axis=0))
        grid[half:mapsize:step, 0:mapsize:step] = wibbled_mean(tt)
        step //= 2
        wibble /= wibbledecay
    grid -= grid.min()
    return grid / grid.max()


def snow_flakes(rngs, h: int, w: int, loc: float, scale: float,
                zoom: float, threshold: float) -> np.ndarray:
    """Unblurred snow layers, one per generator, as 8-bit values.

    Gaussian noise, zoomed in, thresholded, then quantised as the reference
    does when it writes the layer to PNG for ImageMagick.

    Args:
        rngs: one NumPy generator per image.
        h: height.
        w: width.
        loc: mean of the noise.
        scale: standard deviation of the noise.
        zoom: clipped-zoom factor (flake size).
        threshold: values below it become 0.

    Returns:
        float32 [N, h, w, 1] with integer values in [0, 255].
    """
    layer = np.stack([r.normal(loc, scale, size=(h, w)) for r in rngs])
    layer = clipped_zoom(layer[..., None], zoom)
    layer[layer < threshold] = 0
    return (np.clip(layer, 0, 1) * 255).astype(np.uint8).astype(np.float32)


def add_snow(x: np.ndarray, flakes: np.ndarray, blend: float) -> np.ndarray:
    """Whitens a [N, H, W, C] batch and adds blurred flakes twice.

    Args:
        x: float batch in [0, 1].
        flakes: motion-blurred flakes on the 0-255 scale, [N, H, W, 1].
        blend: weight of the original image in the whitening.

    Returns:
        The snowy batch in [0, 1].
    """
    flakes = np.round(flakes) / 255  # 8-bit PNG round trip in the reference
    x = blend * x + (1 - blend) * np.maximum(x, luminance(x) * 1.5 + 0.5)
    snow = flakes + np.rot90(flakes, k=2, axes=(1, 2))
    return np.clip(x + snow, 0, 1)


def next_power_of_two(n: int) -> int:
    """Smallest power of two >= n."""
    return 1 << max(0, int(n - 1).bit_length())


def frost_textures(rng: np.random.Generator, n: int, h: int, w: int,
                   needle_length: float) -> np.ndarray:
    """Synthetic frost-like RGB layers in [0, 255].

    The reference blends crops of six frost photographs (`frost.py` reads
    them from imagecorruptions-imaug); without that package these
    textures stand in with the same role: a bright hazy plasma plus thin
    ice needles (sparse seeds smeared along six random directions), tinted
    blue-white. Frost numbers are then not comparable to the released
    data.

    Args:
        rng: NumPy generator.
        n: number of textures.
        h: height.
        w: width.
        needle_length: blur radius of the needles in pixels.

    Returns:
        A float32 [n, h, w, 3] array in [0, 255].
    """
    size = next_power_of_two(max(h, w))
    haze = np.stack([plasma_fractal(size, 2.0, rng)[:h, :w]
                     for _ in range(n)])
    needles = np.zeros((n, h, w, 1), np.float32)
    for _ in range(6):
        seeds = (rng.random((n, h, w, 1)) < 0.005).astype(np.float32)
        needles += motion_blur(seeds, needle_length, needle_length / 2,
                               rng.uniform(0.0, 360.0, size=n))
    needles = needles[..., 0]
    scale = np.percentile(needles.reshape(n, -1), 99, axis=1)
    needles /= np.maximum(scale, 1e-6)[:, None, None]
    tex = np.clip(0.35 + 0.5 * haze + 0.6 * needles, 0.0, 1.0)
    tint = np.array([0.84, 0.92, 1.0], np.float32)
    return (tex[..., None] * tint * 255.0).astype(np.float32)


def warp(x: np.ndarray, inverse: np.ndarray, order: int = 1,
         mode: str = "grid-constant") -> np.ndarray:
    """Warps one [H, W, C] image with an inverse projective map.

    Args:
        x: float [H, W, C] image.
        inverse: [3, 3] matrix taking output (col, row, 1) to input
            (col, row, w) homogeneous coordinates.
        order: spline order (0 nearest, 1 bilinear).
        mode: scipy border mode ('grid-constant' blends with 0 past the
            edge like OpenCV's BORDER_CONSTANT; 'mirror' is REFLECT_101).

    Returns:
        The warped float32 image.
    """
    h, w, c = x.shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    pts = np.stack([cols.ravel(), rows.ravel(), np.ones(h * w)])
    src = inverse @ pts
    src_cols = (src[0] / src[2]).reshape(h, w)
    src_rows = (src[1] / src[2]).reshape(h, w)
    out = np.empty(x.shape, np.float32)
    for ch in range(c):
        out[..., ch] = ndimage.map_coordinates(
            x[..., ch], [src_rows, src_cols], order=order, mode=mode)
    return out


def affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """cv2.getAffineTransform: the 3x3 affine map taking 3 src to 3 dst."""
    a = np.concatenate([src, np.ones((3, 1))], axis=1)
    m = np.linalg.solve(a, dst).T  # [2, 3]
    return np.vstack([m, [0.0, 0.0, 1.0]])


def centred_affine(h: int, w: int, angle: float = 0.0, scale: float = 1.0,
                   translate: tuple = (0.0, 0.0)) -> np.ndarray:
    """Forward 3x3 map: rotate (degrees, counter-clockwise) and scale about
    the image centre, then translate by (dx, dy) pixels.

    Mirrors torchvision's `F.affine` as used by make_*_p.py.
    """
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) * scale
    m = np.eye(3)
    m[:2, :2] = rot
    m[:2, 2] = (np.array([cx, cy]) - rot @ np.array([cx, cy])
                + np.asarray(translate, np.float64))
    return m
