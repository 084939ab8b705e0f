"""A line chart as a PNG without plotting libraries: the recipes save their loss curves with it
(a fresh machine need not install matplotlib). Lines are rasterized into an RGB grid and written
with zlib, the PNG format's own compression."""

from __future__ import annotations

import struct
import zlib

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _png_bytes(pixels: list[bytearray], width: int, height: int) -> bytes:
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)  # filter type 0 per scanline

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def save_line_chart(path: str, series: dict[str, list[tuple[float, float]]], width: int = 640,
                    height: int = 400) -> list[tuple[str, tuple[int, int, int]]]:
    """Draws each named series of (x, y) points as a colored polyline on shared axes (with a
    frame and a light grid) and writes ``path``. Returns the legend: (name, RGB color) pairs,
    which the caller prints or writes beside the image."""
    pixels = [bytearray(b"\xff" * (3 * width)) for _ in range(height)]
    margin = 30
    points = [p for s in series.values() for p in s]
    if not points:
        raise ValueError("save_line_chart: no points to draw")
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def put(px: int, py: int, color) -> None:
        if 0 <= px < width and 0 <= py < height:
            pixels[py][3 * px : 3 * px + 3] = bytes(color)

    def to_pixel(x: float, y: float) -> tuple[int, int]:
        return (margin + round((x - x0) / (x1 - x0) * (width - 2 * margin)),
                height - margin - round((y - y0) / (y1 - y0) * (height - 2 * margin)))

    for i in range(5):  # grid and frame
        gy = margin + i * (height - 2 * margin) // 4
        gx = margin + i * (width - 2 * margin) // 4
        shade = (120, 120, 120) if i in (0, 4) else (225, 225, 225)
        for px in range(margin, width - margin + 1):
            put(px, gy, shade)
        for py in range(margin, height - margin + 1):
            put(gx, py, shade)
    legend = []
    for k, (name, pts) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        legend.append((name, color))
        prev = None
        for x, y in pts:
            cur = to_pixel(x, y)
            if prev is not None:  # a 2-pixel-thick segment, sampled densely enough to be gap-free
                n = max(abs(cur[0] - prev[0]), abs(cur[1] - prev[1]), 1)
                for t in range(n + 1):
                    px = prev[0] + (cur[0] - prev[0]) * t // n
                    py = prev[1] + (cur[1] - prev[1]) * t // n
                    put(px, py, color)
                    put(px, py + 1, color)
            prev = cur
        for j in range(12):  # legend swatch in the top right corner
            for h in range(4):
                put(width - margin - 14 + j, margin + 6 + 10 * k + h, color)
    with open(path, "wb") as f:
        f.write(_png_bytes(pixels, width, height))
    return legend
