#!/usr/bin/env python3
"""Scores QR decoders on image sets: decode rate, time per image, panics (docs/scanner.md).

Usage:
  scripts/scanner-bench.py [--medcard BIN] [--runs N] [--synthetic DIR] [--json OUT] SET_DIR...

A set is a directory of images `N.png` / `N.jpg` with the exact expected text in `N.txt` (the
layout of zxing's blackbox sets, and of `../shared/corpora/zxing-qr/qrcode-*`). `--synthetic DIR`
first writes the camera-like sets of `scripts/scanner-synth.py` into DIR and scores them too.

Decoders, each on every image:
- `medcard`: `medcard qr decode IMAGE`, one process per image (what a user runs);
- `zbarimg`: `zbarimg --raw -q IMAGE`, one process per image (Debian's zbar-tools);
- `zxing-cpp`: the `zxingcpp` Python module (PyPI wheel `zxing-cpp`), in this process: its
  decode rate is the reference to reach; its time is in-process, so not comparable to the two
  process columns and reported apart.

Time: `--runs` paired runs (default 5); in each run every image is decoded by medcard and by
zbarimg back to back, in an order that alternates, so both see the same machine load. Reported:
the median over runs of the total time per decoder, the ratio medcard / zbarimg of those medians,
and the 95th percentile of the per-image medians. A read counts when the expected text is one of
the texts printed (bytes exactly; one trailing newline of the tool's output is not part of it).
Lines with "panicked" on medcard's stderr are counted.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def load_set(directory):
    items = []
    for p in sorted(Path(directory).iterdir(), key=lambda p: (len(p.stem), p.stem)):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            txt = p.with_suffix(".txt")
            if txt.exists():
                items.append((p, txt.read_bytes()))
    return items


def contains(stdout, expected):
    # Both tools print each text followed by "\n"; a text may itself hold newlines.
    return (b"\n" + stdout).find(b"\n" + expected + b"\n") >= 0 or stdout == expected


def run(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return time.perf_counter() - t0, p.stdout, p.stderr


def zxing_cpp_reader():
    try:
        import zxingcpp
        from PIL import Image
    except ImportError:
        return None

    def read(path):
        img = Image.open(path)
        t0 = time.perf_counter()
        results = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
        dt = time.perf_counter() - t0
        return dt, [r.bytes if hasattr(r, "bytes") else r.text.encode() for r in results], [r.text.encode() for r in results]

    return read


def p95(values):
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(0.95 * (len(s) - 1)))))
    return s[k]


def score(name, items, medcard, runs, zx):
    """`medcard`: the command and its options before the image path."""
    per_image = {str(p): {"medcard": [], "zbarimg": []} for p, _ in items}
    read = {"medcard": set(), "zbarimg": set(), "zxing-cpp": set()}
    panics = 0
    totals = {"medcard": [], "zbarimg": []}
    for r in range(runs):
        tot = {"medcard": 0.0, "zbarimg": 0.0}
        for i, (path, expected) in enumerate(items):
            order = ["medcard", "zbarimg"] if (i + r) % 2 == 0 else ["zbarimg", "medcard"]
            for who in order:
                if who == "medcard":
                    dt, out, err = run([medcard[0], "qr", "decode", *medcard[1:], str(path)])
                    if r == 0:
                        panics += err.count(b"panicked")
                else:
                    dt, out, err = run(["zbarimg", "--raw", "-q", str(path)])
                tot[who] += dt
                per_image[str(path)][who].append(dt)
                if r == 0 and contains(out, expected):
                    read[who].add(str(path))
        for who in tot:
            totals[who].append(tot[who])
    zx_time = []
    if zx is not None:
        for path, expected in items:
            dt, raw, texts = zx(path)
            zx_time.append(dt)
            if expected in texts or expected in raw or expected.rstrip(b"\n") in [t.rstrip(b"\n") for t in texts]:
                read["zxing-cpp"].add(str(path))
    med = {w: statistics.median(totals[w]) for w in totals}
    p95s = {w: p95([statistics.median(v[w]) for v in per_image.values()]) for w in ("medcard", "zbarimg")}
    return {
        "set": name,
        "images": len(items),
        "read": {w: len(s) for w, s in read.items()},
        "missed_by_medcard": sorted(set(str(p) for p, _ in items) - read["medcard"]),
        "zxing_read_medcard_missed": sorted(read["zxing-cpp"] - read["medcard"]),
        "panicked_lines": panics,
        "total_s": med,
        "ratio_total": med["medcard"] / med["zbarimg"] if med["zbarimg"] else None,
        "p95_s": p95s,
        "ratio_p95": p95s["medcard"] / p95s["zbarimg"] if p95s["zbarimg"] else None,
        "zxing_cpp_in_process_total_s": sum(zx_time),
        "run_totals": totals,
        "image_medians": {w: [statistics.median(v[w]) for v in per_image.values()] for w in ("medcard", "zbarimg")},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", help="set directories (N.png + N.txt)")
    ap.add_argument("--medcard", default=os.environ.get("MEDCARD", "target/release/medcard"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--budget-ms", type=int, help="passed to medcard qr decode (default: its own, 80 ms)")
    ap.add_argument("--synthetic", help="write the synthetic sets here first and score them too")
    ap.add_argument("--json", help="write the full report here")
    args = ap.parse_args()
    sets = list(args.sets)
    if args.synthetic:
        here = Path(__file__).resolve().parent
        subprocess.run([sys.executable, str(here / "scanner-synth.py"), args.synthetic], check=True)
        sets += sorted(str(p) for p in Path(args.synthetic).iterdir() if p.is_dir())
    if not sets:
        ap.error("no sets given")
    zx = zxing_cpp_reader()
    if zx is None:
        print("note: Python module zxingcpp not found (pip install zxing-cpp); its column is empty", file=sys.stderr)
    reports = []
    all_items = []
    for s in sets:
        items = load_set(s)
        all_items += items
        medcard = [args.medcard] + ([f"--budget-ms={args.budget_ms}"] if args.budget_ms is not None else [])
        rep = score(Path(s).name, items, medcard, args.runs, zx)
        reports.append(rep)
        print(
            f"{rep['set']:>22}: {rep['images']:3} images | read medcard {rep['read']['medcard']:3} "
            f"zbar {rep['read']['zbarimg']:3} zxing-cpp {rep['read']['zxing-cpp']:3} | total medcard "
            f"{rep['total_s']['medcard']:.2f} s zbar {rep['total_s']['zbarimg']:.2f} s ratio {rep['ratio_total']:.2f} | "
            f"p95 {rep['p95_s']['medcard'] * 1000:.0f} / {rep['p95_s']['zbarimg'] * 1000:.0f} ms ratio {rep['ratio_p95']:.2f} | "
            f"panicked {rep['panicked_lines']}",
            flush=True,
        )
    if len(reports) > 1:
        n = sum(r["images"] for r in reports)
        read = {w: sum(r["read"][w] for r in reports) for w in ("medcard", "zbarimg", "zxing-cpp")}
        runs = min(len(r["run_totals"]["medcard"]) for r in reports)
        tot = {w: statistics.median([sum(r["run_totals"][w][i] for r in reports) for i in range(runs)]) for w in ("medcard", "zbarimg")}
        p95s = {w: p95([t for r in reports for t in r["image_medians"][w]]) for w in ("medcard", "zbarimg")}
        print(
            f"{'all':>22}: {n:3} images | read medcard {read['medcard']:3} zbar {read['zbarimg']:3} zxing-cpp {read['zxing-cpp']:3} | "
            f"total medcard {tot['medcard']:.2f} s zbar {tot['zbarimg']:.2f} s ratio {tot['medcard'] / tot['zbarimg']:.2f} | "
            f"p95 {p95s['medcard'] * 1000:.0f} / {p95s['zbarimg'] * 1000:.0f} ms ratio {p95s['medcard'] / p95s['zbarimg']:.2f} | "
            f"panicked {sum(r['panicked_lines'] for r in reports)}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
