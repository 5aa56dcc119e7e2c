"""aten LSTM and GRU and their cells (what scripted `nn.LSTM`, `nn.GRU`, `nn.LSTMCell`, `nn.GRUCell` call) -> IR compositions.

The input projection of every time step is one matmul per layer and direction; the recurrence is
unrolled over the (static) sequence length: per step one matmul for the hidden projection and the
gates as elementwise ops (which fuse). Multi-layer, bidirectional and batch-first forms are handled;
dropout between layers is refused in training mode (it would make results random).
"""
from __future__ import annotations

from xcomp.frontends.aten import aten


def _step_slice(cx, x, axis: int, i: int):
    s = cx.op("slice", x, axis=axis, start=i, end=i + 1, step=1)
    shape = [d for k, d in enumerate(s.type.shape) if k != axis]
    return cx.op("reshape", s, shape=tuple(shape))


def _gates(cx, g, n: int, hidden: int):
    return [cx.op("slice", g, axis=g.type.rank - 1, start=k * hidden, end=(k + 1) * hidden, step=1)
            for k in range(n)]


def _linear(cx, x, w, b):
    y = cx.op("matmul", x, w, transpose_b=True)
    return cx.op("add", y, b) if b is not None else y


def _lstm_cell(cx, xw, h, c, w_hh, b_hh, hidden):
    g = cx.op("add", xw, _linear(cx, h, w_hh, b_hh))
    i, f, gg, o = _gates(cx, g, 4, hidden)
    c = cx.op("add", cx.op("mul", cx.op("sigmoid", f), c), cx.op("mul", cx.op("sigmoid", i), cx.op("tanh", gg)))
    h = cx.op("mul", cx.op("sigmoid", o), cx.op("tanh", c))
    return h, c


def _gru_cell(cx, xw, h, c, w_hh, b_hh, hidden):
    gh = _linear(cx, h, w_hh, b_hh)
    xr, xz, xn = _gates(cx, xw, 3, hidden)
    hr, hz, hn = _gates(cx, gh, 3, hidden)
    r = cx.op("sigmoid", cx.op("add", xr, hr))
    z = cx.op("sigmoid", cx.op("add", xz, hz))
    n = cx.op("tanh", cx.op("add", xn, cx.op("mul", r, hn)))
    one = cx.const(1.0, h.type.dtype)
    return cx.op("add", cx.op("mul", cx.op("sub", one, z), n), cx.op("mul", z, h)), None


def _run(cx, cell, x, states, params, has_biases, num_layers, train, dropout, bidirectional, batch_first):
    """Returns (output, final states per kind): `states` is a list of [L*D, B, H] tensors."""
    if train and dropout:
        raise NotImplementedError("recurrent dropout in training mode")
    dt = cx.out_dtype
    x = cx.tensor(x, dt)
    if not batch_first:
        x = cx.op("transpose", x, perm=(1, 0, 2))
    steps = x.type.shape[1]
    dirs = 2 if bidirectional else 1
    per = 4 if has_biases else 2
    finals = [[] for _ in states]
    for layer in range(num_layers):
        outs_dir = []
        for d in range(dirs):
            k = (layer * dirs + d)
            w_ih, w_hh, *b = [cx.tensor(p, dt) for p in params[k * per:(k + 1) * per]]
            b_ih, b_hh = (b[0], b[1]) if has_biases else (None, None)
            hidden = w_hh.type.shape[1]
            xw = _linear(cx, x, w_ih, b_ih)  # [B, T, G*H]: every step's input projection at once
            st = [_step_slice(cx, cx.tensor(s, dt), 0, k) for s in states]
            h, c = st[0], (st[1] if len(st) > 1 else None)
            order = range(steps - 1, -1, -1) if d else range(steps)
            hs = {}
            for t in order:
                h, c = cell(cx, _step_slice(cx, xw, 1, t), h, c, w_hh, b_hh, hidden)
                hs[t] = h
            seq = [cx.op("reshape", hs[t], shape=(h.type.shape[0], 1, hidden)) for t in range(steps)]
            outs_dir.append(cx.op("concat", *seq, axis=1) if len(seq) > 1 else seq[0])
            for lst, v in zip(finals, (h, c)):
                lst.append(cx.op("reshape", v, shape=(1,) + tuple(v.type.shape)))
        x = cx.op("concat", *outs_dir, axis=2) if dirs > 1 else outs_dir[0]
    out = x if batch_first else cx.op("transpose", x, perm=(1, 0, 2))
    return out, [cx.op("concat", *f, axis=0) if len(f) > 1 else f[0] for f in finals]


@aten("aten.lstm.input")
def lstm(cx, x, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    out, (h, c) = _run(cx, _lstm_cell, x, list(hx), params, has_biases, num_layers, train, dropout,
                       bidirectional, batch_first)
    return [out, h, c]


@aten("aten.gru.input")
def gru(cx, x, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    out, (h,) = _run(cx, _gru_cell, x, [hx], params, has_biases, num_layers, train, dropout,
                     bidirectional, batch_first)
    return [out, h]


@aten("aten.lstm_cell.default")
def lstm_cell(cx, x, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    dt = cx.out_dtype
    x, h, c = cx.tensor(x, dt), cx.tensor(hx[0], dt), cx.tensor(hx[1], dt)
    w_hh = cx.tensor(w_hh, dt)
    xw = _linear(cx, x, cx.tensor(w_ih, dt), None if b_ih is None else cx.tensor(b_ih, dt))
    h, c = _lstm_cell(cx, xw, h, c, w_hh, None if b_hh is None else cx.tensor(b_hh, dt), w_hh.type.shape[1])
    return [h, c]


@aten("aten.gru_cell.default")
def gru_cell(cx, x, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    dt = cx.out_dtype
    x, h, w_hh = cx.tensor(x, dt), cx.tensor(hx, dt), cx.tensor(w_hh, dt)
    xw = _linear(cx, x, cx.tensor(w_ih, dt), None if b_ih is None else cx.tensor(b_ih, dt))
    h, _ = _gru_cell(cx, xw, h, None, w_hh, None if b_hh is None else cx.tensor(b_hh, dt), w_hh.type.shape[1])
    return h
