"""Headless Chromium for the tests: find the binary, load a page, read its screenshot and console.

Why the command line and not a browser driver: Debian's chromium alone is
enough (no extra package), a run takes about three seconds, and
`--enable-logging=stderr --v=0` writes every console message of the page as a
line containing `:CONSOLE` (level not shown, so any line counts as a problem:
the report itself never logs). A negative control in the tests proves that a
deliberate console error and an exception are seen.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--hide-scrollbars",
)


def chromium_path() -> str | None:
    """A Chromium/Chrome binary, looked up as kaleido (choreographer) does: BROWSER_PATH, then PATH."""
    if os.environ.get("BROWSER_PATH"):
        return os.environ["BROWSER_PATH"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


needs_chromium = pytest.mark.skipif(
    chromium_path() is None,
    reason="no Chromium/Chrome binary (Debian: apt-get install chromium): needed for PNG export and page rendering",
)


@dataclass
class PageLoad:
    stdout: str
    console: list[str]
    """Console messages and uncaught exceptions of the page."""


def load_page(
    page: Path | str,
    profile: Path,
    *,
    screenshot: Path | None = None,
    dump_dom: bool = False,
    window: tuple[int, int] = (1280, 6000),
    scale: float = 0.25,
    timeout: float = 90,
) -> PageLoad:
    """Open `page` (a file, or a URL such as the live report's) in a fresh profile; take a screenshot
    (scaled down, so it decodes fast) or dump the DOM."""
    args = [
        chromium_path(),
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
        f"--force-device-scale-factor={scale}",
        "--virtual-time-budget=10000",
    ]
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    if dump_dom:
        args.append("--dump-dom")
    args.append(page if isinstance(page, str) else page.resolve().as_uri())
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return PageLoad(stdout=done.stdout, console=console)


def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG (what Chromium writes) to a (height, width, channels) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (0, 2, 4, 6), f"unsupported PNG layout {header}"
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1)
        if kind == 0:
            cur = line.copy()
        elif kind == 1:  # Sub: a running sum along the row, per channel
            cur = (np.cumsum(line.reshape(-1, bpp).astype(np.int64), axis=0) % 256).astype(np.uint8).ravel()
        elif kind == 2:  # Up
            cur = line + prev
        else:  # Average or Paeth: sequential along the row
            row, up = bytearray(line.tobytes()), prev.tobytes()
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    row[i] = (row[i] + ((a + b) >> 1)) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.frombuffer(bytes(row), dtype=np.uint8)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)


def ink(image: np.ndarray) -> tuple[float, int]:
    """(fraction of pixels that are not near-white, number of distinct colours): a blank page has ~(0, 1)."""
    rgb = image[..., :3].reshape(-1, 3).astype(np.int64) if image.shape[-1] >= 3 else image.reshape(-1, 1)
    nonwhite = float((rgb.min(axis=1) < 245).mean())
    codes = rgb @ np.array([65536, 256, 1][: rgb.shape[1]])
    return nonwhite, len(np.unique(codes))
