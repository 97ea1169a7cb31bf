"""File identities: what tells a model, an input feed or an output apart from another."""

import hashlib


def file_sha256(path, digest=None):
    """sha256 of a file's bytes, read in 1 MiB chunks; ``digest`` continues an existing hash."""
    own = digest is None
    digest = hashlib.sha256() if own else digest
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() if own else digest
