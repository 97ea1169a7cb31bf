"""The encoder of a model directory as a function ``encode_batch(id arrays) -> states``.

``ct2_encoder`` runs the exported CTranslate2 model (the runtime's forward, no torch), and
may be called from several threads at once;
``torch_encoder`` runs a transformers checkpoint and imports torch only when called.
"""

def ct2_encoder(path, threads=0):
    """``threads`` windows at once, each on one core (0: one per core; the Predictor sends that
    many calls at a time). One core a window, not all cores on each: a window's cores wait on
    each other at every layer, so on 2 cores a 20-token window took 22 ms on both against 2 ms
    a window two at a time, and a 512-token one 90 ms against 64 (same states to the bit)."""
    import ctranslate2
    import numpy as np

    encoder = ctranslate2.Encoder(str(path), device="cpu", inter_threads=threads or cores(), intra_threads=1)

    def encode_batch(id_arrays):
        # Unpadded lists with their real lengths: padding without lengths gives wrong states.
        output = encoder.forward_batch([ids.tolist() for ids in id_arrays])
        states = np.array(output.last_hidden_state, dtype=np.float32)
        return [states[row, : len(ids)] for row, ids in enumerate(id_arrays)]

    return encode_batch


def cores():
    """The cores this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def torch_encoder(path, threads=0):
    import torch
    from transformers import AutoModel

    if threads:
        torch.set_num_threads(threads)
    model = AutoModel.from_pretrained(str(path), add_pooling_layer=False).eval()
    run = lambda ids, mask: model(input_ids=ids, attention_mask=mask).last_hidden_state  # noqa: E731
    return torch_batch_encoder(run, model.config.pad_token_id or 0)


def torch_batch_encoder(run, pad, device="cpu"):
    """Wrap ``run(input_ids, attention_mask) -> states`` as a Predictor's encoder."""
    import torch

    @torch.no_grad()
    def encode_batch(id_arrays):
        length = max(len(ids) for ids in id_arrays)
        input_ids = torch.full((len(id_arrays), length), pad, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, ids in enumerate(id_arrays):
            input_ids[row, : len(ids)] = torch.as_tensor(ids)
            attention[row, : len(ids)] = 1
        states = run(input_ids.to(device), attention.to(device)).float().cpu().numpy()
        return [states[row, : len(ids)] for row, ids in enumerate(id_arrays)]

    return encode_batch
