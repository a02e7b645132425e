"""BERT Studio's torch shim: the subset of torch that custom tasks use,
backed by numpy (docs/custom-tasks.md lists it). Tensors live in the
sandboxed child; models run in the server's engine (transformers.py).
Anything outside the subset raises NotImplementedError naming it."""

import builtins as _builtins
import collections as _collections
import sys as _sys
import types as _types

import numpy as _np

__version__ = "2.0.0+bertstudio.shim"


def _unsupported(name):
    raise NotImplementedError(f"not supported by BERT Studio's torch shim: {name}")


float32 = float = _np.dtype("float32")
float64 = double = _np.dtype("float64")
int64 = long = _np.dtype("int64")
int32 = int = _np.dtype("int32")
bool = _np.dtype("bool")

_MaxMin = _collections.namedtuple("return_types", ["values", "indices"])


class Size(tuple):
    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n

    def __repr__(self):
        return f"torch.Size({list(self)})"


def _arr(x):
    if isinstance(x, Tensor):
        return x._a
    return x


def _idx(i):
    if isinstance(i, Tensor):
        return i._a
    if isinstance(i, tuple):
        return tuple(_idx(j) for j in i)
    return i


def _wrap(a):
    if isinstance(a, _np.ndarray):
        return Tensor(a)
    if isinstance(a, _np.generic):
        return Tensor(_np.asarray(a))
    return a


def _softmax(a, dim):
    a = a.astype(_np.float32) if a.dtype.kind != "f" else a
    m = a.max(axis=dim, keepdims=True)
    e = _np.exp(a - m)
    return e / e.sum(axis=dim, keepdims=True)


class Tensor:
    """A numpy array with torch's names. Gradients do not exist here."""

    __slots__ = ("_a",)

    def __init__(self, data):
        self._a = data if isinstance(data, _np.ndarray) else _np.asarray(data)

    # shape and type
    @property
    def shape(self):
        return Size(self._a.shape)

    def size(self, dim=None):
        return Size(self._a.shape) if dim is None else self._a.shape[dim]

    def dim(self):
        return self._a.ndim

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def device(self):
        return "cpu"

    @property
    def requires_grad(self):
        return False

    def numel(self):
        return int(self._a.size)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for row in self._a:
            yield _wrap(row)

    def __getitem__(self, i):
        return _wrap(self._a[_idx(i)])

    def __setitem__(self, i, v):
        self._a[_idx(i)] = _arr(v)

    def __repr__(self):
        return "tensor(" + _np.array2string(self._a, separator=", ") + ")"

    # conversions
    def tolist(self):
        return self._a.tolist()

    def item(self):
        if self._a.size != 1:
            raise ValueError(f"a Tensor with {self._a.size} elements cannot be converted to Scalar")
        return self._a.reshape(-1)[0].item()

    def numpy(self):
        return self._a

    def detach(self):
        return self

    def cpu(self):
        return self

    def cuda(self, *a, **k):
        _unsupported("Tensor.cuda (custom tasks run on the server's CPU engine)")

    def to(self, *args, **kwargs):
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, _np.dtype):
                return Tensor(self._a.astype(a))
        return self

    def clone(self):
        return Tensor(self._a.copy())

    def contiguous(self):
        return self

    def float(self):
        return Tensor(self._a.astype(_np.float32))

    def double(self):
        return Tensor(self._a.astype(_np.float64))

    def long(self):
        return Tensor(self._a.astype(_np.int64))

    def int(self):
        return Tensor(self._a.astype(_np.int32))

    def bool(self):
        return Tensor(self._a.astype(_np.bool_))

    def __float__(self):
        return _builtins.float(self.item())

    def __int__(self):
        return _builtins.int(self.item())

    def __bool__(self):
        return _builtins.bool(self.item())

    def __index__(self):
        return _builtins.int(self.item())

    # arithmetic
    def __add__(self, o):
        return Tensor(self._a + _arr(o))

    __radd__ = __add__

    def __sub__(self, o):
        return Tensor(self._a - _arr(o))

    def __rsub__(self, o):
        return Tensor(_arr(o) - self._a)

    def __mul__(self, o):
        return Tensor(self._a * _arr(o))

    __rmul__ = __mul__

    def __truediv__(self, o):
        return Tensor(self._a / _arr(o))

    def __rtruediv__(self, o):
        return Tensor(_arr(o) / self._a)

    def __floordiv__(self, o):
        return Tensor(self._a // _arr(o))

    def __pow__(self, o):
        return Tensor(self._a ** _arr(o))

    def __neg__(self):
        return Tensor(-self._a)

    def __abs__(self):
        return Tensor(_np.abs(self._a))

    def __matmul__(self, o):
        return Tensor(self._a @ _arr(o))

    def __rmatmul__(self, o):
        return Tensor(_arr(o) @ self._a)

    def __eq__(self, o):
        return Tensor(self._a == _arr(o))

    def __ne__(self, o):
        return Tensor(self._a != _arr(o))

    def __lt__(self, o):
        return Tensor(self._a < _arr(o))

    def __le__(self, o):
        return Tensor(self._a <= _arr(o))

    def __gt__(self, o):
        return Tensor(self._a > _arr(o))

    def __ge__(self, o):
        return Tensor(self._a >= _arr(o))

    __hash__ = object.__hash__

    def add(self, o):
        return self + o

    def sub(self, o):
        return self - o

    def mul(self, o):
        return self * o

    def div(self, o):
        return self / o

    def matmul(self, o):
        return self @ o

    def mm(self, o):
        return self @ o

    def dot(self, o):
        return Tensor(_np.dot(self._a, _arr(o)))

    def exp(self):
        return Tensor(_np.exp(self._a))

    def log(self):
        return Tensor(_np.log(self._a))

    def sqrt(self):
        return Tensor(_np.sqrt(self._a))

    def abs(self):
        return Tensor(_np.abs(self._a))

    def sigmoid(self):
        return Tensor(1.0 / (1.0 + _np.exp(-self._a)))

    def round(self):
        return Tensor(_np.round(self._a))

    def clamp(self, min=None, max=None):
        return Tensor(_np.clip(self._a, min, max))

    # reductions
    def softmax(self, dim=-1):
        return Tensor(_softmax(self._a, dim))

    def log_softmax(self, dim=-1):
        return Tensor(_np.log(_softmax(self._a, dim)))

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor(_np.asarray(self._a.argmax()))
        return Tensor(_np.asarray(self._a.argmax(axis=dim), dtype=_np.int64)
                      if not keepdim else _np.expand_dims(self._a.argmax(axis=dim), dim))

    def argmin(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor(_np.asarray(self._a.argmin()))
        r = self._a.argmin(axis=dim)
        return Tensor(_np.expand_dims(r, dim) if keepdim else r)

    def _extreme(self, fn, argfn, dim, keepdim):
        if dim is None:
            return Tensor(_np.asarray(fn(self._a)))
        v = fn(self._a, axis=dim, keepdims=keepdim)
        i = argfn(self._a, axis=dim)
        if keepdim:
            i = _np.expand_dims(i, dim)
        return _MaxMin(Tensor(v), Tensor(i.astype(_np.int64)))

    def max(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return Tensor(_np.maximum(self._a, dim._a))
        return self._extreme(_np.max, _np.argmax, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return Tensor(_np.minimum(self._a, dim._a))
        return self._extreme(_np.min, _np.argmin, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return Tensor(_np.asarray(self._a.mean(axis=dim, keepdims=keepdim)))

    def sum(self, dim=None, keepdim=False):
        return Tensor(_np.asarray(self._a.sum(axis=dim, keepdims=keepdim)))

    def norm(self, p=2, dim=None, keepdim=False):
        return Tensor(_np.asarray(_np.linalg.norm(self._a, ord=p if dim is not None else None,
                                                  axis=dim, keepdims=keepdim)))

    def topk(self, k, dim=-1, largest=True, sorted=True):
        a = self._a if largest else -self._a
        idx = _np.argsort(-a, axis=dim, kind="stable")
        idx = _np.take(idx, _np.arange(k), axis=dim)
        vals = _np.take_along_axis(self._a, idx, axis=dim)
        return _MaxMin(Tensor(vals), Tensor(idx.astype(_np.int64)))

    # shape changes
    def view(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return Tensor(self._a.reshape(shape))

    reshape = view

    def unsqueeze(self, dim):
        return Tensor(_np.expand_dims(self._a, dim))

    def squeeze(self, dim=None):
        if dim is None:
            return Tensor(_np.squeeze(self._a))
        if self._a.shape[dim] != 1:
            return self
        return Tensor(_np.squeeze(self._a, axis=dim))

    def flatten(self):
        return Tensor(self._a.reshape(-1))

    def transpose(self, d0, d1):
        return Tensor(_np.swapaxes(self._a, d0, d1))

    def t(self):
        return Tensor(self._a.T)

    @property
    def T(self):
        return Tensor(self._a.T)

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = dims[0]
        return Tensor(_np.transpose(self._a, dims))

    def expand_as(self, o):
        return Tensor(_np.broadcast_to(self._a, _arr(o).shape))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        _unsupported(f"Tensor.{name}")


def _default_dtype(data):
    a = _np.asarray(data)
    if a.dtype.kind == "f":
        return a.astype(_np.float32)
    if a.dtype.kind in "iu":
        return a.astype(_np.int64)
    return a


def tensor(data, dtype=None, device=None, requires_grad=False):
    if isinstance(data, Tensor):
        data = data._a
    a = _np.array(data, dtype=dtype) if dtype is not None else _default_dtype(data)
    return Tensor(a)


def as_tensor(data, dtype=None, device=None):
    return tensor(data, dtype=dtype)


def from_numpy(a):
    return Tensor(a)


def is_tensor(x):
    return isinstance(x, Tensor)


def zeros(*shape, dtype=None):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return Tensor(_np.zeros(shape, dtype=dtype or _np.float32))


def ones(*shape, dtype=None):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return Tensor(_np.ones(shape, dtype=dtype or _np.float32))


def arange(*args, dtype=None):
    return Tensor(_np.arange(*args, dtype=dtype))


def softmax(t, dim=-1):
    return tensor(t).softmax(dim)


def log_softmax(t, dim=-1):
    return tensor(t).log_softmax(dim)


def sigmoid(t):
    return tensor(t).sigmoid()


def exp(t):
    return tensor(t).exp()


def log(t):
    return tensor(t).log()


def sqrt(t):
    return tensor(t).sqrt()


def abs(t):
    return tensor(t).abs()


def argmax(t, dim=None, keepdim=False):
    return tensor(t).argmax(dim, keepdim)


def argmin(t, dim=None, keepdim=False):
    return tensor(t).argmin(dim, keepdim)


def max(t, dim=None, keepdim=False):
    return tensor(t).max(dim, keepdim)


def min(t, dim=None, keepdim=False):
    return tensor(t).min(dim, keepdim)


def mean(t, dim=None, keepdim=False):
    return tensor(t).mean(dim, keepdim)


def sum(t, dim=None, keepdim=False):
    return tensor(t).sum(dim, keepdim)


def topk(t, k, dim=-1, largest=True, sorted=True):
    return tensor(t).topk(k, dim, largest, sorted)


def matmul(a, b):
    return Tensor(_arr(a) @ _arr(b))


def mm(a, b):
    return matmul(a, b)


def dot(a, b):
    return Tensor(_np.dot(_arr(a), _arr(b)))


def norm(t, p=2, dim=None, keepdim=False):
    return tensor(t).norm(p, dim, keepdim)


def cat(tensors, dim=0):
    return Tensor(_np.concatenate([_arr(t) for t in tensors], axis=dim))


def stack(tensors, dim=0):
    return Tensor(_np.stack([_arr(t) for t in tensors], axis=dim))


def where(cond, a, b):
    return Tensor(_np.where(_arr(cond), _arr(a), _arr(b)))


def clamp(t, min=None, max=None):
    return tensor(t).clamp(min, max)


def manual_seed(seed):
    return None


class no_grad:
    """A context manager and decorator; there are no gradients anyway."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        return fn


inference_mode = no_grad
enable_grad = no_grad


class device:
    def __init__(self, name="cpu"):
        self.type = str(name).split(":")[0]

    def __repr__(self):
        return f"device(type='{self.type}')"


class _Cuda:
    @staticmethod
    def is_available():
        return False

    @staticmethod
    def device_count():
        return 0


cuda = _Cuda()


# torch.nn.functional


def _cosine_similarity(x1, x2, dim=1, eps=1e-8):
    a, b = _arr(x1).astype(_np.float32), _arr(x2).astype(_np.float32)
    num = (a * b).sum(axis=dim)
    den = _np.maximum(_np.linalg.norm(a, axis=dim) * _np.linalg.norm(b, axis=dim), eps)
    return Tensor(_np.asarray(num / den))


def _normalize(t, p=2.0, dim=1, eps=1e-12):
    a = _arr(t).astype(_np.float32)
    n = _np.linalg.norm(a, ord=p, axis=dim, keepdims=True) if p != 2.0 else \
        _np.sqrt((a * a).sum(axis=dim, keepdims=True))
    return Tensor(a / _np.maximum(n, eps))


def _relu(t):
    return Tensor(_np.maximum(_arr(t), 0))


def _module_getattr(modname):
    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        _unsupported(f"{modname}.{name}")
    return __getattr__


nn = _types.ModuleType("torch.nn")
functional = _types.ModuleType("torch.nn.functional")
functional.softmax = lambda t, dim=-1, **k: softmax(t, dim)
functional.log_softmax = lambda t, dim=-1, **k: log_softmax(t, dim)
functional.normalize = _normalize
functional.cosine_similarity = _cosine_similarity
functional.sigmoid = sigmoid
functional.relu = _relu
functional.__getattr__ = _module_getattr("torch.nn.functional")
nn.functional = functional
nn.__getattr__ = _module_getattr("torch.nn")
_sys.modules["torch.nn"] = nn
_sys.modules["torch.nn.functional"] = functional
nn.__path__ = []


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    _unsupported(f"torch.{name}")
