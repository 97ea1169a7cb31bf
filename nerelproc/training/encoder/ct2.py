"""CTranslate2 conversion of the encoder (needs torch + transformers).

The torch-free forward that annotation runs is ``nerelproc.runtime.encoders.ct2_encoder``.
"""

from pathlib import Path


COPIED = ("tokenizer.json", "PROVENANCE.json")  # travel with the model when present


def convert_to_ct2(hf_dir, out_dir, quantization="int8", overwrite=False):
    """Convert a BERT checkpoint (ours or any `BertModel` folder) to CTranslate2."""
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers.utils import logging

    class Converter(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            model = super().load_model(model_class, model_name_or_path, **kwargs)
            # transformers 5 dropped this attribute; CTranslate2's BERT loader asserts on it
            if getattr(model.config, "position_embedding_type", None) is None:
                model.config.position_embedding_type = "absolute"
            # the loader wants a pooler and transformers makes a random one: zero it, so the
            # output is reproducible (only last_hidden_state is used)
            if getattr(model, "pooler", None) is not None:
                with torch.no_grad():
                    for p in model.pooler.parameters():
                        p.zero_()
            return model

    hf_dir = Path(hf_dir)
    copy = [name for name in COPIED if (hf_dir / name).is_file()]
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # else a report on the (deliberately) missing pooler
    try:
        Converter(str(hf_dir), copy_files=copy or None).convert(
            str(out_dir), quantization=quantization, force=overwrite)
    finally:
        logging.set_verbosity(verbosity)
    return Path(out_dir)
