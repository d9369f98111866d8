"""GGUF -> Hugging Face folder (placeholder until implemented)."""


def export_hf(src, out_dir, **kw):
    raise NotImplementedError
