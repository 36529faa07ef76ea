"""A PNG check that runs before torchvision's decoder sees the file.

torchvision's ``decode_png`` (and ``decode_image`` on a PNG) guards only the header read
against libpng errors: an error met while it reads the rows (a header that declares more rows
than the data holds, a bad filter byte, a zlib error, a chunk whose CRC does not match) kills
the process with a segmentation fault, naming no file. :func:`png_problem` finds each of these
first, so the loaders can raise an error that names the file instead.

It walks the chunks (checking the CRC of the critical ones), inflates the image data once and
checks its length and the filter byte of every row. Inflating is most of a decode's work: on
a 2048 x 1024 photo the check took about 20 ms (a label 3 ms), about 80 % of its decode,
timed on a 2-core CPU; so a file found sound is not checked again in the same process while
its size and time stamp stay the same.
"""

from __future__ import annotations

import os
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: channels per PNG colour type (grey, RGB, palette, grey + alpha, RGBA)
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: the bit depths each colour type allows
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
#: Adam7 passes: (first row, row step, first column, column step)
ADAM7 = ((0, 8, 0, 8), (0, 8, 4, 8), (4, 8, 0, 4), (0, 4, 2, 4), (2, 4, 0, 2), (0, 2, 1, 2))
ADAM7 += ((1, 2, 0, 1),)
CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")


def png_header(data) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, reading 24 bytes; None when ``data`` is no PNG."""
    head = bytes(data[:24])
    if len(head) < 24 or not head.startswith(SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _rows(width: int, height: int, bits_per_pixel: int, interlace: int) -> list[tuple[int, int]]:
    """(rows, bytes per row without the filter byte) of each pass that holds pixels."""
    if interlace == 0:
        return [(height, (width * bits_per_pixel + 7) // 8)]
    passes = []
    for row0, row_step, col0, col_step in ADAM7:
        rows = (height - row0 + row_step - 1) // row_step if height > row0 else 0
        cols = (width - col0 + col_step - 1) // col_step if width > col0 else 0
        if rows and cols:
            passes.append((rows, (cols * bits_per_pixel + 7) // 8))
    return passes


def png_problem(data) -> str | None:
    """What in a PNG would make libpng fail, in a few words; None when the file is sound or
    no PNG at all (the decoders refuse a file of another format without crashing).

    Args:
        data: the whole file (bytes, or any buffer such as a uint8 numpy array).

    Returns:
        e.g. ``"its header declares 129 rows of 256 pixels but its data holds 128"``, ``"a CRC
        error in its IDAT chunk"``; None when every check passes.
    """
    view = memoryview(data).cast("B")
    if bytes(view[:8]) != SIGNATURE:
        return None
    pos, ihdr, idat, ended = 8, None, [], False
    while pos + 12 <= len(view):
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        end = pos + 12 + length
        if end > len(view):
            return f"truncated: its {kind.decode('latin-1')} chunk runs past the end of the file"
        body = view[pos + 8 : end - 4]
        if kind in CRITICAL:
            crc = struct.unpack(">I", view[end - 4 : end])[0]
            if zlib.crc32(body, zlib.crc32(kind)) != crc:
                return f"a CRC error in its {kind.decode()} chunk"
        if kind == b"IHDR":
            ihdr = bytes(body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            ended = True
            break
        pos = end
    if ihdr is None or len(ihdr) != 13:
        return "no valid IHDR header chunk"
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", ihdr
    )
    if not width or not height or depth not in DEPTHS.get(colour, ()):
        return f"an invalid header: {width}x{height}, colour type {colour}, bit depth {depth}"
    if compression or filtering or interlace > 1:
        return "an invalid header: unknown compression, filter or interlace method"
    if not idat:
        return "no image data (no IDAT chunk)"
    if not ended:
        return "truncated: no IEND chunk"
    passes = _rows(width, height, CHANNELS[colour] * depth, interlace)
    expected = sum(rows * (1 + row_bytes) for rows, row_bytes in passes)
    inflater = zlib.decompressobj()
    try:
        pixels = inflater.decompress(b"".join(idat), expected)
        if not inflater.eof:  # read on to the stream's checksum, which libpng checks too
            inflater.decompress(inflater.unconsumed_tail, 1 << 16)
    except zlib.error as err:
        return f"damaged image data: {str(err).split(': ')[-1]}"
    if len(pixels) < expected:
        got = len(pixels) // (1 + passes[0][1]) if interlace == 0 else None
        held = f"its data holds {got}" if got is not None else "its data is shorter"
        return f"its header declares {height} rows of {width} pixels but {held}"
    offset = 0
    for rows, row_bytes in passes:
        stride = 1 + row_bytes
        if max(pixels[offset : offset + rows * stride : stride]) > 4:
            return "damaged image data: a row with an unknown filter type"
        offset += rows * stride
    return None


class DamagedPng(ValueError):
    """A PNG that :func:`png_problem` found damaged; ``reason`` says how, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: files found sound, with the (size, mtime) they had: each is checked once per process
_SOUND: dict[str, tuple[int, int]] = {}


def require_sound_png(path, data) -> None:
    """Raise :class:`DamagedPng` when ``data`` (the bytes of ``path``) would crash libpng.

    A file found sound is remembered with its size and modification time, so that the epochs
    after the first pay only a ``stat`` per file.
    """
    stat = os.stat(path)
    key, stamp = os.fspath(path), (stat.st_size, stat.st_mtime_ns)
    if _SOUND.get(key) == stamp:
        return
    problem = png_problem(data)
    if problem is not None:
        raise DamagedPng(problem)
    _SOUND[key] = stamp
