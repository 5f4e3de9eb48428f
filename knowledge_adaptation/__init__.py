__version__ = "0.1.0"

# fastai decorates a few activations with `torch.jit.script` when it is imported, which recent torch deprecates with a
# FutureWarning: the first line a user of `ka_reproduce` would see. Silence that one warning, for that import only.
import warnings as _warnings
with _warnings.catch_warnings():
    _warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
    import fastai.layers as _fastai_layers
