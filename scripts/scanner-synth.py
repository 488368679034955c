#!/usr/bin/env python3
"""Writes deterministic synthetic "camera-like" QR test sets for the scanner benchmark.

Usage:
  python3 scripts/scanner-synth.py OUT_DIR [--count N]

Creates one sub-directory per set in OUT_DIR, each with N images (default 12) `1.png`, `2.png`,
... (`1.jpg`, ... for the jpeg set) and next to each the exact expected text in `1.txt`, `2.txt`,
... (UTF-8, no trailing newline): the layout `scripts/scanner-bench.py` reads. Re-running
overwrites; numbered images and texts left in a set directory by an earlier run with a larger N
are removed so a set never mixes runs.

Texts: about 60% MedCard-like pointers, "MC1:" followed by 150..450 random characters of the
base45 alphabet (QR alphanumeric mode, version ~8..16), the rest short URLs or plain ASCII words
(20..80 characters). Codes are rendered with the `qrcode` package (error correction M or Q,
border 4, box_size = module size 3..8 px) and printed as a label (ink 20..60, paper 205..245)
onto a background that is never flat white: a soft gradient, low-frequency blotches and a
vignette; mild optics blur and sensor noise are added last. Images are 1280x720 grey unless said.

Sets:
  rotation      code rotated by a random angle in [0, 360).
  perspective   random homography: the code's four corners each moved by up to 20% of its size
                (as if held at an angle), inverse-mapped with bilinear sampling.
  curved        code on a cylinder like a wristband: x = R*sin(theta), R = 0.6..1.2 code widths,
                shading darker toward the edges, rows bent by a small camera elevation.
  blur          Gaussian blur sigma 1.0..2.2 px (PIL GaussianBlur), motion blur on some.
  glare         additive saturating elliptical specular highlight over 10..25% of the code,
                over at most one finder pattern.
  low-contrast  dark modules 90..130, light 150..190 (40..80 levels apart), plus noise.
  jpeg          moderate noise, saved as JPEG quality 25..45.
  moire         a phone screen photographed: the code drawn nearest-neighbour on a screen pixel
                grid, multiplied by an RGB-subpixel-like pattern of period 3..4 px, point-sampled
                by the camera at a small angle and non-integer scale (moire), slight blur,
                brightness 0.7..0.9.
  small-in-big  3840x2160 frame, modules 2.5..4 px at a random place, clutter (dark rectangles,
                lines) elsewhere, never over the code.
  dark          under-exposed: everything at 15..35% brightness plus noise (a dim ward at night).

Determinism: image i of a set uses numpy's default_rng([set seed, i]), so outputs are identical
run to run and image i does not depend on --count. Parameters are kept moderate on purpose: the
benchmark must separate decoders, so every image stays readable in principle by a good decoder.
"""

import argparse
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import qrcode
from PIL import Image, ImageDraw, ImageFilter

W, H = 1280, 720
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
EC = {"M": qrcode.constants.ERROR_CORRECT_M, "Q": qrcode.constants.ERROR_CORRECT_Q}
HOSTS = ["medcard.example", "ward7.hospital.example", "qr.example.org", "ex.am/p", "h.example.net"]
WORDS = (
    "patient ward bed night nurse check dose card scan pointer record allergy blood type "
    "insulin morning evening room floor wing note chart green blue amber label wrist band"
).split()
SLUG = "abcdefghijklmnopqrstuvwxyz0123456789"


# ---------------------------------------------------------------------------------------------
# Texts and code rendering


def make_text(rng):
    if rng.random() < 0.6:
        n = int(rng.integers(150, 451))
        return "MC1:" + "".join(BASE45[i] for i in rng.integers(0, len(BASE45), n))
    target = int(rng.integers(20, 81))
    if rng.random() < 0.5:
        s = "https://" + HOSTS[int(rng.integers(len(HOSTS)))] + "/"
        s += "".join(SLUG[i] for i in rng.integers(0, len(SLUG), max(1, target - len(s))))
        return s
    s = ""
    while len(s) < target:
        s += ("" if not s else " ") + WORDS[int(rng.integers(len(WORDS)))]
    # Cut at 80 but never leave a trailing space: some tools trim it, and the benchmark compares
    # exact bytes, which would then measure the tool's output policy rather than its decoding.
    s = s[:80].rstrip()
    return s if len(s) >= 20 else s + " scan card"


def pick_box(rng, lo, hi, max_side):
    """Returns a function n_modules -> box_size in [lo, hi] that keeps the code within max_side."""

    def f(n):
        top = max(lo, min(hi, int(max_side // n)))
        return int(rng.integers(lo, top + 1))

    return f


def render_qr(text, ec, box_for_n):
    """Renders with `qrcode` (border 4) as a grey array, 0 dark and 255 light; returns (img, n, box).

    The version is fixed first (box 1) so the box size can depend on the module count: a large
    code must get smaller modules to fit the frame once rotated or tilted.
    """
    qr = qrcode.QRCode(error_correction=EC[ec], box_size=1, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    n = qr.modules_count + 8
    box = box_for_n(n)
    qr.box_size = box
    img = np.asarray(qr.make_image().get_image().convert("L"), dtype=np.uint8)
    return img, n, box


def to_label(q, ink, paper):
    # A printed label: ink is never pure black and paper never pure white under a camera.
    return (paper + (ink - paper) * (1.0 - q.astype(np.float32) / 255.0)).astype(np.float32)


def label_colours(rng):
    return float(rng.uniform(20, 60)), float(rng.uniform(205, 245))


def random_ec(rng):
    return "M" if rng.random() < 0.5 else "Q"


# ---------------------------------------------------------------------------------------------
# Scene, sampling, finishing


def background(rng, w=W, h=H, lo=120.0, hi=200.0, amp=(15.0, 45.0)):
    """Soft gradient + low-frequency blotches + vignette: a desk, a sheet, a blanket; never flat."""
    base = rng.uniform(lo, hi)
    ang = rng.uniform(0, 2 * math.pi)
    a = rng.uniform(*amp)
    s = float(max(w, h))
    x = ((np.arange(w, dtype=np.float32) + 0.5) - w / 2) / s
    y = ((np.arange(h, dtype=np.float32) + 0.5) - h / 2) / s
    g = base + a * (x[None, :] * math.cos(ang) + y[:, None] * math.sin(ang))
    coarse = rng.normal(0, a * 0.25, (4, 7)).astype(np.float32)
    g = g + np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.float32)
    vig = rng.uniform(0.1, 0.3)
    g = g * (1.0 - vig * 2.0 * (x[None, :] ** 2 + y[:, None] ** 2))
    return g.astype(np.float32)


def bilinear(src, alpha, sx, sy):
    """Samples src and alpha (both padded by 1 px) at source coordinates (pixel centres at i+0.5).

    Coordinates far outside are clipped into the padding, whose alpha is 0, so the code has an
    anti-aliased edge and the background shows elsewhere.
    """
    hp, wp = src.shape
    fx = np.clip(sx + 0.5, 0.0, wp - 1.001).astype(np.float32)  # -0.5 centre, +1 padding
    fy = np.clip(sy + 0.5, 0.0, hp - 1.001).astype(np.float32)
    x0 = fx.astype(np.int32)
    y0 = fy.astype(np.int32)
    ax = fx - x0
    ay = fy - y0
    i00 = y0 * wp + x0
    out = []
    for arr in (src, alpha):
        f = arr.ravel()
        v00 = f[i00]
        v01 = f[i00 + 1]
        v10 = f[i00 + wp]
        v11 = f[i00 + wp + 1]
        top = v00 + (v01 - v00) * ax
        bot = v10 + (v11 - v10) * ax
        out.append(top + (bot - top) * ay)
    return out


def composite(scene, label, inv_map, bbox, ss=1, pad_value=None):
    """Draws label onto scene inside bbox; inv_map(X, Y) -> (sx, sy, gain or None).

    ss > 1 supersamples (ss x ss points per pixel) where the map shrinks the code, so modules of
    2.5..4 px or foreshortened parts are area-averaged as a lens would, not aliased.
    """
    hs, ws = scene.shape
    x0, y0, x1, y1 = bbox
    x0, y0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    x1, y1 = min(ws, int(math.ceil(x1))), min(hs, int(math.ceil(y1)))
    if x1 <= x0 or y1 <= y0:
        return
    pv = float(label[0, 0]) if pad_value is None else pad_value
    src = np.pad(label, 1, constant_values=pv).astype(np.float32)
    alp = np.pad(np.ones_like(label, dtype=np.float32), 1, constant_values=0.0)
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)
    acc_v = np.zeros((y1 - y0, x1 - x0), np.float32)
    acc_a = np.zeros_like(acc_v)
    offs = (np.arange(ss, dtype=np.float32) + 0.5) / ss
    for oy in offs:
        for ox in offs:
            X, Y = np.meshgrid(xs + ox, ys + oy)
            sx, sy, gain = inv_map(X, Y)
            v, a = bilinear(src, alp, sx, sy)
            if gain is not None:
                v = v * gain
            acc_v += v * a
            acc_a += a
    acc_v /= ss * ss
    acc_a /= ss * ss
    region = scene[y0:y1, x0:x1]
    scene[y0:y1, x0:x1] = region * (1.0 - acc_a) + acc_v


def place_rotated(rng, scene, label, angle_deg, scale=1.0, ss=1, margin=10):
    """Puts label at a random position, rotated by angle_deg and scaled; returns inv_map, bbox."""
    hs, ws = scene.shape
    sh, sw = label.shape
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    ex = (abs(ca) * sw + abs(sa) * sh) * scale / 2
    ey = (abs(sa) * sw + abs(ca) * sh) * scale / 2
    cx = rng.uniform(ex + margin, ws - ex - margin) if ws - 2 * (ex + margin) > 0 else ws / 2
    cy = rng.uniform(ey + margin, hs - ey - margin) if hs - 2 * (ey + margin) > 0 else hs / 2

    def inv(X, Y):
        dx = X - cx
        dy = Y - cy
        return (ca * dx + sa * dy) / scale + sw / 2, (-sa * dx + ca * dy) / scale + sh / 2, None

    bbox = (cx - ex - 2, cy - ey - 2, cx + ex + 2, cy + ey + 2)
    composite(scene, label, inv, bbox, ss=ss)
    return inv, bbox


def blur(img, sigma):
    # PIL's GaussianBlur does not take mode "F"; rounding to 8 bits first is what a sensor does.
    if sigma <= 0:
        return img
    im = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32)


def noisy(rng, img, sigma, shot=0.0):
    """Read noise sigma plus optional signal-dependent (shot-like) noise."""
    n = rng.standard_normal(img.shape, dtype=np.float32)
    if shot > 0:
        return img + n * np.sqrt(sigma * sigma + shot * np.maximum(img, 0.0))
    return img + n * sigma


def to_u8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def finish(rng, img, blur_range=(0.4, 0.8), noise_range=(2.0, 4.0)):
    img = blur(img, rng.uniform(*blur_range)) if blur_range else img
    return to_u8(noisy(rng, img, rng.uniform(*noise_range)))


def rotated_scene(rng, box=(3, 8), angle=None, ec=None, colours=None, bg=None):
    """The common case: one label, rotated, on a background. Returns (scene float, text, extras)."""
    text = make_text(rng)
    ang = rng.uniform(-15, 15) if angle is None else angle
    a = math.radians(ang)
    grow = abs(math.cos(a)) + abs(math.sin(a))  # rotated bounding box / side
    q, n, b = render_qr(text, ec or random_ec(rng), pick_box(rng, box[0], box[1], (H - 30) / grow))
    ink, paper = colours or label_colours(rng)
    scene = background(rng) if bg is None else bg
    inv, bbox = place_rotated(rng, scene, to_label(q, ink, paper), ang)
    return scene, text, dict(inv=inv, bbox=bbox, n=n, box=b, side=q.shape[0])


# ---------------------------------------------------------------------------------------------
# The sets: each takes an rng and returns (uint8 image, text, save options)


def set_rotation(rng):
    scene, text, _ = rotated_scene(rng, box=(3, 8), angle=rng.uniform(0, 360))
    return finish(rng, scene), text, {}


def homography(src, dst):
    """3x3 H with H @ [src, 1] ~ [dst, 1] from 4 point pairs (DLT, h33 = 1)."""
    A, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        b.append(u)
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b.append(v)
    h = np.linalg.solve(np.array(A, float), np.array(b, float))
    return np.append(h, 1.0).reshape(3, 3)


def set_perspective(rng):
    text = make_text(rng)
    # Corners move by up to 0.2 side and a base rotation of up to 30 deg: the quad spans at most
    # ~1.8 sides. Box >= 4 because the far side is foreshortened to ~60% of the module size.
    q, n, b = render_qr(text, random_ec(rng), pick_box(rng, 4, 8, (H - 30) / 1.8))
    s = q.shape[0]
    ink, paper = label_colours(rng)
    scene = background(rng)
    rot = math.radians(rng.uniform(-30, 30))
    c, si = math.cos(rot), math.sin(rot)
    half = 0.5 * s * (abs(c) + abs(si)) + 0.2 * s
    cx = rng.uniform(half + 10, W - half - 10)
    cy = rng.uniform(half + 10, H - half - 10) if H - 2 * (half + 10) > 0 else H / 2
    src = [(0, 0), (s, 0), (s, s), (0, s)]
    dst = []
    for x, y in src:
        dx, dy = x - s / 2, y - s / 2
        r = 0.2 * s * math.sqrt(rng.random())  # uniform in a disc of radius 20% of the side
        t = rng.uniform(0, 2 * math.pi)
        dst.append((cx + c * dx - si * dy + r * math.cos(t), cy + si * dx + c * dy + r * math.sin(t)))
    Hi = homography(dst, src)  # output -> source: inverse mapping

    def inv(X, Y):
        w = Hi[2, 0] * X + Hi[2, 1] * Y + Hi[2, 2]
        return (Hi[0, 0] * X + Hi[0, 1] * Y + Hi[0, 2]) / w, (Hi[1, 0] * X + Hi[1, 1] * Y + Hi[1, 2]) / w, None

    xs = [p[0] for p in dst]
    ys = [p[1] for p in dst]
    composite(scene, to_label(q, ink, paper), inv, (min(xs) - 2, min(ys) - 2, max(xs) + 2, max(ys) + 2), ss=2)
    return finish(rng, scene), text, {}


def set_curved(rng):
    text = make_text(rng)
    q, n, b = render_qr(text, random_ec(rng), pick_box(rng, 4, 8, 600))
    s = q.shape[0]
    ink, paper = label_colours(rng)
    scene = background(rng)
    R = rng.uniform(0.6, 1.2) * s
    # The band goes on past the code: pad the label with band material (paper) to half the
    # circumference so the whole visible front of the cylinder is band, as on a wrist.
    padw = int(math.ceil(math.pi * R / 2 - s / 2)) + 2
    band = np.pad(to_label(q, ink, paper), ((b, b), (padw, padw)), constant_values=paper)
    bh, bw = band.shape
    elev = math.radians(rng.uniform(-12, 12))  # camera a little above/below: rows bend
    rot = math.radians(rng.uniform(-8, 8))
    light = rng.uniform(-0.35, 0.35)  # light a little off-axis: one edge darker than the other
    cr, sr = math.cos(rot), math.sin(rot)
    ce, se = math.cos(elev), math.sin(elev)
    ex = R + abs(sr) * bh / 2 + 4
    ey = bh / 2 * ce + R * abs(se) + abs(sr) * R + 4
    cx = rng.uniform(ex + 10, W - ex - 10) if W - 2 * (ex + 10) > 0 else W / 2
    cy = rng.uniform(ey + 10, H - ey - 10) if H - 2 * (ey + 10) > 0 else H / 2

    def inv(X, Y):
        dx, dy = X - cx, Y - cy
        xr = cr * dx + sr * dy
        yr = -sr * dx + cr * dy
        t = xr / R
        ok = np.abs(t) < 0.999
        th = np.arcsin(np.clip(t, -0.999, 0.999))
        u = R * th  # arc length along the band: x = R sin(theta) inverted
        v = (yr - R * (1.0 - np.cos(th)) * se) / ce
        gain = 0.3 + 0.7 * np.clip(np.cos(th - light), 0.0, 1.0)
        sx = np.where(ok, u + bw / 2, -1e4)
        return sx, v + bh / 2, gain

    composite(scene, band, inv, (cx - ex, cy - ey, cx + ex, cy + ey), ss=2, pad_value=paper)
    return finish(rng, scene), text, {}


def set_blur(rng):
    # Modules >= 5 px: sigma 2.2 on 3 px modules erases them for every decoder.
    scene, text, _ = rotated_scene(rng, box=(5, 8), angle=rng.uniform(-12, 12))
    img = blur(scene, rng.uniform(1.0, 2.2))
    if rng.random() < 0.4:
        # Hand shake during exposure: average of copies shifted along a short line.
        L = int(rng.integers(3, 7))
        a = rng.uniform(0, math.pi)
        acc = np.zeros_like(img)
        for t in np.linspace(-L / 2, L / 2, L + 1):
            acc += np.roll(img, (int(round(t * math.sin(a))), int(round(t * math.cos(a)))), axis=(0, 1))
        img = acc / (L + 1)
    return to_u8(noisy(rng, img, rng.uniform(2.0, 3.5))), text, {}


def set_glare(rng):
    # Q level: the saturated core wipes out some codewords and Q recovers ~25% of them.
    scene, text, ex = rotated_scene(rng, box=(4, 8), angle=rng.uniform(-20, 20), ec="Q")
    n, b = ex["n"], ex["box"]
    lo, hi = 4 * b, (n - 4) * b  # the code proper, without quiet zone, in source pixels
    side = hi - lo
    finders = [(lo, lo), (hi - 7 * b, lo), (lo, hi - 7 * b)]
    g = (np.arange(9) + 0.5) / 9 * 7 * b
    for _ in range(500):
        frac = rng.uniform(0.10, 0.25)
        asp = rng.uniform(1.0, 2.0)
        ea = math.sqrt(frac * side * side * asp / math.pi)
        eb = ea / asp
        phi = rng.uniform(0, math.pi)
        gx = rng.uniform(lo + 0.15 * side, hi - 0.15 * side)
        gy = rng.uniform(lo + 0.15 * side, hi - 0.15 * side)
        cp, sp = math.cos(phi), math.sin(phi)
        hits = 0
        for fx, fy in finders:
            px = fx + g[None, :] - gx
            py = fy + g[:, None] - gy
            r2 = ((px * cp + py * sp) / ea) ** 2 + ((-px * sp + py * cp) / eb) ** 2
            hits += bool((r2 < 1.0).any())
        if hits <= 1:
            break
    X, Y = np.meshgrid(np.arange(W, dtype=np.float32) + 0.5, np.arange(H, dtype=np.float32) + 0.5)
    sx, sy, _ = ex["inv"](X, Y)  # evaluate the ellipse in code coordinates: it is laid on the code
    px, py = sx - gx, sy - gy
    r = np.sqrt(((px * cp + py * sp) / ea) ** 2 + ((-px * sp + py * cp) / eb) ** 2)
    core = 0.5
    peak = rng.uniform(190, 260)
    fall = 0.5 * (1 + np.cos(np.pi * np.clip((r - core) / (1 - core), 0, 1)))
    add = peak * fall + 25.0 * np.exp(-0.5 * (r / 1.6) ** 2)  # plus a faint halo around it
    img = blur(scene, rng.uniform(0.4, 0.8))
    img = noisy(rng, img, rng.uniform(2.0, 4.0)) + add  # after noise: a saturated pixel is flat 255
    return to_u8(img), text, {}


def set_low_contrast(rng):
    dark = rng.uniform(90, 130)
    light = float(np.clip(dark + rng.uniform(40, 80), 150, 190))
    bg = background(rng, lo=135, hi=185, amp=(8, 25))
    scene, text, _ = rotated_scene(rng, box=(4, 8), angle=rng.uniform(-15, 15), colours=(dark, light), bg=bg)
    return finish(rng, scene, noise_range=(2.5, 4.0)), text, {}


def set_jpeg(rng):
    # Modules >= 4 px: at 3 px an 8x8 DCT block holds ~7 modules and q25 smears them away.
    scene, text, _ = rotated_scene(rng, box=(4, 8), angle=rng.uniform(-15, 15))
    img = finish(rng, scene, noise_range=(4.0, 6.0))
    return img, text, {"quality": int(rng.integers(25, 46))}


def set_moire(rng):
    text = make_text(rng)
    P = rng.uniform(3.0, 4.0)  # screen pixel pitch in the intermediate (screen) space
    m = int(rng.integers(2, 4))  # screen pixels per module: the code as an app draws it
    margin = 3  # white screen around the quiet zone, in modules
    q, n, _ = render_qr(text, random_ec(rng), lambda n: m)
    S = np.pad(q, margin * m, constant_values=255).astype(np.float32) / 255.0
    sh, sw = S.shape
    t = min(rng.uniform(4.0, 6.5), (H - 80) / (n + 2 * margin) / 1.1)  # module size in the photo
    c = t / (m * P)  # photo px per screen-space px: non-integer, so the pitch beats the sensor grid
    rot = math.radians(rng.uniform(1.0, 6.0) * (1 if rng.random() < 0.5 else -1))
    cr, sr = math.cos(rot), math.sin(rot)
    bez = 0.12 * sw * P  # phone body around the screen, in screen space
    half = (sw * P / 2 + bez) * c * (abs(cr) + abs(sr))
    cx = rng.uniform(half + 10, W - half - 10) if W - 2 * (half + 10) > 0 else W / 2
    cy = rng.uniform(half + 10, H - half - 10) if H - 2 * (half + 10) > 0 else H / 2
    depth = rng.uniform(0.3, 0.5)
    sub = np.array([0.9, 1.25, 0.85], np.float32)  # R, G, B stripes seen through a grey sensor
    sub = 1.0 - depth * (1.0 - sub / sub.mean())
    gap = rng.uniform(0.55, 0.75)  # black matrix between pixel rows
    bright = rng.uniform(0.7, 0.9)
    scene = background(rng, lo=70, hi=150)
    X, Y = np.meshgrid(np.arange(W, dtype=np.float32) + 0.5, np.arange(H, dtype=np.float32) + 0.5)
    dx, dy = X - cx, Y - cy
    # Point sampling at pixel centres (no supersampling) is what makes the moire.
    u = (cr * dx + sr * dy) / c + sw * P / 2
    v = (-sr * dx + cr * dy) / c + sh * P / 2
    ci = np.floor(u / P).astype(np.int32)
    ri = np.floor(v / P).astype(np.int32)
    on = (ci >= 0) & (ci < sw) & (ri >= 0) & (ri < sh)
    val = S[np.clip(ri, 0, sh - 1), np.clip(ci, 0, sw - 1)]  # nearest-neighbour upscaling
    ph_u = (u / P) - np.floor(u / P)
    ph_v = (v / P) - np.floor(v / P)
    pat = sub[np.minimum((ph_u * 3).astype(np.int32), 2)] * np.where(ph_v > 0.82, gap, 1.0)
    lum = 255.0 * bright * (0.05 + 0.95 * val * pat) + rng.uniform(5, 15)  # + room reflection
    body = (np.abs(u - sw * P / 2) < sw * P / 2 + bez) & (np.abs(v - sh * P / 2) < sh * P / 2 + bez)
    img = np.where(on, lum, np.where(body, 22.0, scene)).astype(np.float32)
    img = blur(img, rng.uniform(0.5, 0.9))
    return to_u8(noisy(rng, img, rng.uniform(1.5, 3.0))), text, {}


def set_small_in_big(rng):
    w, h = 3840, 2160
    text = make_text(rng)
    t = rng.uniform(2.5, 4.0)
    q, n, b = render_qr(text, random_ec(rng), lambda n: 4)
    ink, paper = label_colours(rng)
    scene = background(rng, w, h)
    ang = rng.uniform(-10, 10)
    # Clutter first, on an 8-bit copy (PIL draws there), kept off the code's box plus a margin.
    a = math.radians(ang)
    ext = q.shape[0] * t / 4 * (abs(math.cos(a)) + abs(math.sin(a))) / 2
    cx = rng.uniform(ext + 40, w - ext - 40)
    cy = rng.uniform(ext + 40, h - ext - 40)
    keep = (cx - ext - 40, cy - ext - 40, cx + ext + 40, cy + ext + 40)
    im = Image.fromarray(to_u8(scene))
    d = ImageDraw.Draw(im)
    placed = 0
    while placed < int(rng.integers(30, 60)):
        kind = rng.random()
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        if kind < 0.6:
            x1, y1 = x0 + rng.uniform(20, 500), y0 + rng.uniform(10, 300)
        else:
            L, th = rng.uniform(50, 900), rng.uniform(0, math.pi)
            x1, y1 = x0 + L * math.cos(th), y0 + L * math.sin(th)
        bx = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if bx[2] > keep[0] and bx[0] < keep[2] and bx[3] > keep[1] and bx[1] < keep[3]:
            continue
        col = int(rng.uniform(10, 110))
        if kind < 0.35:
            d.rectangle(bx, fill=col)
        elif kind < 0.6:
            d.rectangle(bx, outline=col, width=int(rng.integers(2, 9)))
        else:
            d.line((x0, y0, x1, y1), fill=col, width=int(rng.integers(1, 7)))
        placed += 1
    scene = np.asarray(im, dtype=np.float32).copy()
    sw = q.shape[0]
    ca, sa = math.cos(a), math.sin(a)
    sc = t / 4

    def inv(X, Y):
        dx, dy = X - cx, Y - cy
        return (ca * dx + sa * dy) / sc + sw / 2, (-sa * dx + ca * dy) / sc + sw / 2, None

    composite(scene, to_label(q, ink, paper), inv, (cx - ext - 2, cy - ext - 2, cx + ext + 2, cy + ext + 2), ss=2)
    return finish(rng, scene, blur_range=(0.4, 0.7)), text, {}


def set_dark(rng):
    scene, text, _ = rotated_scene(rng, box=(4, 8), angle=rng.uniform(-25, 25))
    img = blur(scene, rng.uniform(0.4, 0.8)) * rng.uniform(0.15, 0.35)
    # Low light: read noise plus shot noise, both large relative to the ~30-level signal.
    return to_u8(noisy(rng, img, rng.uniform(1.5, 2.5), shot=0.25)), text, {}


SETS = [
    ("rotation", set_rotation, 101),
    ("perspective", set_perspective, 102),
    ("curved", set_curved, 103),
    ("blur", set_blur, 104),
    ("glare", set_glare, 105),
    ("low-contrast", set_low_contrast, 106),
    ("jpeg", set_jpeg, 107),
    ("moire", set_moire, 108),
    ("small-in-big", set_small_in_big, 109),
    ("dark", set_dark, 110),
]

NUMBERED = re.compile(r"^\d+\.(png|jpg|txt)$")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--count", type=int, default=12, help="images per set (default 12)")
    args = ap.parse_args()
    out = Path(args.out_dir)
    t0 = time.perf_counter()
    for name, fn, seed in SETS:
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for p in d.iterdir():
            if p.is_file() and NUMBERED.match(p.name):
                p.unlink()
        for i in range(1, args.count + 1):
            rng = np.random.default_rng([seed, i])
            img, text, opts = fn(rng)
            im = Image.fromarray(to_u8(img) if img.dtype != np.uint8 else img)  # 2-D uint8: mode "L"
            if "quality" in opts:
                im.save(d / f"{i}.jpg", quality=opts["quality"])
            else:
                # Level 1: the noise makes PNGs incompressible anyway; higher levels only cost time.
                im.save(d / f"{i}.png", compress_level=1)
            (d / f"{i}.txt").write_bytes(text.encode("utf-8"))
    print(f"wrote {len(SETS)} sets x {args.count} images to {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
