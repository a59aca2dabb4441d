"""Field-photo augmentations for CropShield training (PIL + NumPy + SciPy, seeded by the caller's RNG).

Lab images (PlantVillage, uniform background) get their leaf segmented by colour/saturation thresholding and pasted,
scaled, rotated and shifted, onto cluttered backgrounds: crops of field-train photos, crops of not-a-leaf fit photos
and synthesized soil / foliage / mulch textures. Then every training view gets a random resized crop, flips, colour,
brightness and contrast jitter, blur and JPEG re-compression."""

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage as ndi


def segment_leaf(a):
    """Boolean mask of the leaf in a lab image (HxWx3 uint8) on its uniform background, or None if unsure."""
    f = a.astype(np.float32)
    mx, mn = f.max(2), f.min(2)
    s = (mx - mn) / (mx + 1)
    border = np.concatenate([f[:4].reshape(-1, 3), f[-4:].reshape(-1, 3), f[:, :4].reshape(-1, 3),
                             f[:, -4:].reshape(-1, 3)])
    d = np.abs(f - np.median(border, 0)).max(2)
    m = (s > 0.18) | ((d > 40) & (s > 0.10))
    m = ndi.binary_opening(m, iterations=2)
    lab, n = ndi.label(m)
    if n > 1:
        sizes = ndi.sum(m, lab, range(1, n + 1))
        m = lab == (1 + int(np.argmax(sizes)))
    m = ndi.binary_fill_holes(m)
    frac = m.mean()
    if frac < 0.08 or frac > 0.97:
        return None
    return m


def synth_texture(rng, n):
    """A cluttered natural-looking n x n texture: soil, foliage, mulch or stones (multi-scale coloured noise)."""
    kind = rng.integers(4)
    base = {0: [(95, 70, 45), (60, 45, 30), (130, 100, 70)],  # soil
            1: [(50, 90, 35), (30, 60, 25), (100, 130, 60)],  # foliage / grass
            2: [(110, 85, 55), (70, 55, 35), (160, 140, 100)],  # mulch / straw
            3: [(120, 115, 105), (80, 78, 70), (170, 165, 150)]}[int(kind)]  # stones / concrete
    img = np.zeros((n, n, 3), np.float32)
    for i, scale in enumerate((4, 16, 64)):
        k = max(2, n // scale)
        noise = rng.random((k, k, 1)).astype(np.float32)
        noise = np.asarray(Image.fromarray((noise[..., 0] * 255).astype(np.uint8)).resize((n, n), Image.BICUBIC),
                           np.float32)[..., None] / 255
        c0, c1 = np.array(base[1 + (i % 2)], np.float32), np.array(base[0], np.float32)
        img += (c1 + (c0 - c1) * noise) / 3
    if kind == 1:  # blade/leaf-like streaks
        streak = rng.random((n // 8, n)).astype(np.float32)
        streak = np.asarray(Image.fromarray((streak * 255).astype(np.uint8)).resize((n, n), Image.BILINEAR),
                            np.float32)[..., None] / 255
        img *= 0.7 + 0.6 * streak
    img += rng.normal(0, 8, img.shape).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def random_crop_of(rng, im, n, min_scale=0.2):
    """A random square-ish crop of a PIL image, resized to n x n."""
    w, h = im.size
    s = min(w, h) * np.sqrt(rng.uniform(min_scale, 1.0))
    s = max(16, s)
    x, y = rng.uniform(0, max(0, w - s)), rng.uniform(0, max(0, h - s))
    return im.resize((n, n), Image.BILINEAR, box=(x, y, x + min(s, w), y + min(s, h)))


def background(rng, n, field_bgs, other_bgs):
    r = rng.random()
    if r < 0.45 and field_bgs:
        bg = random_crop_of(rng, field_bgs[rng.integers(len(field_bgs))], n)
        if rng.random() < 0.5:
            bg = bg.filter(ImageFilter.GaussianBlur(rng.uniform(1, 4)))
    elif r < 0.6 and other_bgs:
        bg = random_crop_of(rng, other_bgs[rng.integers(len(other_bgs))], n)
    else:
        bg = synth_texture(rng, n)
    return bg


def paste_on_background(rng, a, mask, field_bgs, other_bgs):
    """Paste the segmented leaf of lab image a (uint8 HxWx3) onto a cluttered background, scaled, rotated and
    shifted. Returns a PIL image of the same size."""
    h, w = mask.shape
    n = w
    bg = background(rng, n, field_bgs, other_bgs)
    alpha = Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    leaf = Image.fromarray(a).convert("RGBA")
    leaf.putalpha(alpha)
    scale = rng.uniform(0.55, 1.1)
    size = max(32, int(n * scale))
    leaf = leaf.resize((size, size), Image.BILINEAR)
    leaf = leaf.rotate(rng.uniform(0, 360), resample=Image.BILINEAR, expand=False)
    ox = int(rng.uniform(-0.2, 0.2) * n + (n - size) / 2)
    oy = int(rng.uniform(-0.2, 0.2) * n + (n - size) / 2)
    # a shadow under the leaf, as in sunlight
    if rng.random() < 0.4:
        sh = Image.new("RGBA", leaf.size, (0, 0, 0, 0))
        sh.putalpha(leaf.getchannel("A").point(lambda v: int(v * 0.45)).filter(ImageFilter.GaussianBlur(4)))
        d = int(rng.integers(3, 12))
        bg.paste(sh, (ox + d, oy + d), sh)
    bg = bg.convert("RGB")
    bg.paste(leaf, (ox, oy), leaf)
    return bg


def photometric(rng, im, strong=True):
    """Colour, brightness, contrast jitter, blur, JPEG re-compression on a PIL RGB image."""
    k = 0.4 if strong else 0.25
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(1 - k, 1 + k))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(1 - k, 1 + k))
    im = ImageEnhance.Color(im).enhance(rng.uniform(1 - k, 1 + k))
    if rng.random() < 0.3:  # white balance / tint
        a = np.asarray(im, np.float32) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.6)))
    elif rng.random() < 0.15:
        im = im.filter(ImageFilter.SHARPEN)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=int(rng.integers(25, 92)))
        buf.seek(0)
        im = Image.open(buf).convert("RGB")
    return im


def random_view(rng, im, n, min_scale, rot):
    """Random resized crop (area min_scale..1, aspect 3/4..4/3), rotation, flips, area-averaged to n x n."""
    w, h = im.size
    if rot and rng.random() < 0.5:
        im = im.rotate(rng.uniform(-rot, rot), resample=Image.BILINEAR, expand=False)
        # crop away the empty corners of the rotation
        c = 0.12
        im = im.crop((int(w * c), int(h * c), int(w * (1 - c)), int(h * (1 - c))))
        w, h = im.size
    side = min(w, h)
    area = side * side * rng.uniform(min_scale, 1.0)
    ar = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw, ch = min(w, np.sqrt(area * ar)), min(h, np.sqrt(area / ar))
    x, y = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    out = im.resize((n, n), Image.BOX if cw >= n and ch >= n else Image.BILINEAR, box=(x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_TOP_BOTTOM)
    return out


def augment_lab(rng, a, mask, n, field_bgs, other_bgs, p_bg=0.75):
    if mask is not None and rng.random() < p_bg:
        im = paste_on_background(rng, a, mask, field_bgs, other_bgs)
    else:
        im = Image.fromarray(a)
    im = random_view(rng, im, n, 0.35, 30)
    return np.asarray(photometric(rng, im), np.uint8)


def augment_photo(rng, im, n, min_scale=0.3, rot=20, strong=True):
    im = random_view(rng, im, n, min_scale, rot)
    return np.asarray(photometric(rng, im, strong), np.uint8)


def synth_negative(rng, n):
    """Synthetic non-leaf pictures: plain colours and gradients, textures, and 'pages of text'."""
    from PIL import ImageDraw
    r = rng.random()
    if r < 0.25:
        a = np.ones((n, n, 3), np.float32) * rng.uniform(0, 255, 3)
        g = np.linspace(0, 1, n, dtype=np.float32)[:, None, None] * rng.uniform(-120, 120, 3)
        im = Image.fromarray(np.clip(a + g, 0, 255).astype(np.uint8))
    elif r < 0.55:
        im = synth_texture(rng, n)
        if rng.random() < 0.5:
            im = im.convert("L").convert("RGB")
    else:
        paper = tuple(int(v) for v in rng.uniform(200, 255, 3))
        im = Image.new("RGB", (n, n), paper)
        d = ImageDraw.Draw(im)
        y = int(rng.integers(4, 20))
        ink = tuple(int(v) for v in rng.uniform(0, 80, 3))
        while y < n - 8:
            x = int(rng.integers(2, 16))
            while x < n - 10:
                wlen = int(rng.integers(2, 9))
                d.text((x, y), "".join(chr(int(c)) for c in rng.integers(97, 123, wlen)), fill=ink)
                x += wlen * 6 + 6
            y += int(rng.integers(10, 16))
        im = im.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR, fillcolor=paper)
    return np.asarray(photometric(rng, im, strong=False), np.uint8)
