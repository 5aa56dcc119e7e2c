"""Every convolution and pooling path of the `cpp` target against torch eager: the register-blocked
direct 1-d/2-d kernel (padded copy or in-place reads, strides 1/2/3, dilation, groups, depthwise,
channel tails, 8- and 16-pixel tiles), the 3-d direct kernel, im2col + GEMM, 1x1 GEMM, transposed
convolutions, and max/avg/adaptive pooling (ceil mode, padding, dilation, indices, NaN).

Cases are compiled in groups (one program each) to keep the build count small."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close

pytestmark = needs_cpp

# (input shape, weight shape, conv kwargs)
CONV = [
    ((1, 3, 32, 32), (16, 3, 3, 3), dict(padding=1)),                      # thin stem, padded copy
    ((2, 16, 16, 16), (16, 16, 3, 3), dict(padding=1)),                    # the zoo CNN's blocks
    ((1, 4, 18, 34), (6, 4, 3, 3), dict()),                                # no pad: reads x in place
    ((1, 8, 17, 13), (6, 8, 3, 5), dict(padding=(1, 2), stride=2)),        # stride 2, 8-pixel tiles
    ((1, 4, 30, 31), (5, 4, 5, 3), dict(stride=(1, 3))),                   # runtime stride 3, tail ch
    ((1, 8, 20, 23), (12, 4, 3, 3), dict(groups=2, dilation=2, padding=2)),
    ((2, 32, 9, 9), (32, 1, 3, 3), dict(groups=32, padding=1)),            # depthwise
    ((1, 6, 11, 40), (12, 1, 3, 3), dict(groups=6, padding=(0, 1), dilation=(2, 1))),  # multiplier 2
    ((2, 6, 40), (8, 3, 5), dict(groups=2, padding=3)),                    # 1-d
    ((1, 2, 19), (3, 2, 4), dict(stride=2, dilation=3)),                   # 1-d strided dilated
    ((1, 32, 12, 12), (8, 32, 3, 3), dict(padding=1)),                     # 288 taps, direct
    ((1, 260, 5, 6), (4, 260, 3, 3), dict(padding=1)),                     # 2340 taps: im2col + GEMM
    ((1, 600, 9, 8), (6, 300, 3, 3), dict(stride=2, padding=(2, 1), dilation=(2, 1), groups=2)),  # im2col
    ((1, 800, 10), (2, 800, 3), dict(padding=2, stride=2)),                # 1-d im2col
    ((1, 8, 4, 5, 6), (3, 8, 3, 3, 3), dict(padding=(1, 0, 2), stride=(1, 2, 1))),  # 3-d im2col
    ((2, 16, 7, 9), (24, 16, 1, 1), dict()),                               # 1x1: one GEMM
    ((1, 2, 5, 6, 7), (4, 2, 3, 3, 3), dict(padding=1)),                   # 3-d direct
]
# (input shape, weight shape, conv_transpose kwargs)
TRANSPOSED = [
    ((1, 4, 7, 9), (4, 6, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 5, 5), (4, 3, 3, 3), dict(groups=2, dilation=2)),
    ((1, 3, 11), (3, 5, 4), dict(stride=3, padding=2)),
]


def _run_group(fn, inputs):
    got = xcomp.compile(fn, target="cpp")(*inputs)
    want = fn(*inputs)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, msg=f"case {i}")


def test_conv_paths_match_torch():
    torch.manual_seed(0)
    # weights scaled by 1/sqrt(fan-in), as initialized nets have them: outputs of order 1 whatever the reduction
    params = [(torch.randn(ws) / math.prod(ws[1:]) ** 0.5, torch.randn(ws[0]), kw, len(ws) - 2) for _, ws, kw in CONV]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

    def fn(*xs):
        return tuple(conv[d](x, w, b if i % 2 else None, **kw) for i, (x, (w, b, kw, d)) in enumerate(zip(xs, params)))
    _run_group(fn, [torch.randn(xs) for xs, _, _ in CONV])


def test_conv_epilogue_relu_residual_matches_torch():
    torch.manual_seed(1)
    w1, w2 = torch.randn(8, 8, 3, 3) * 0.2, torch.randn(8, 8, 3, 3) * 0.2
    b1 = torch.randn(8)

    def fn(x):
        y = torch.relu(F.conv2d(x, w1, b1, padding=1))
        return (torch.relu(x + F.conv2d(y, w2, padding=1)),)
    _run_group(fn, [torch.randn(3, 8, 10, 21)])


def test_conv_epilogue_broadcast_runtime_weight_matches_torch():
    # a weight that is an input (packed per call into scratch), an epilogue reading a per-channel
    # operand by flat index, partial 16-pixel tiles (11 columns) and 8-pixel two-row tiles (odd rows)
    torch.manual_seed(2)

    def fn(x, w, s):
        return (torch.sigmoid(F.conv2d(x, w, padding=1) * s + x),
                torch.relu(F.conv2d(x[..., :7], w, stride=(1, 1), padding=(0, 1)) - s))
    _run_group(fn, [torch.randn(2, 8, 9, 11), torch.randn(8, 8, 3, 3) * 0.2, torch.randn(1, 8, 1, 1)])


def test_transposed_conv_matches_torch():
    torch.manual_seed(2)
    params = [(torch.randn(ws), torch.randn(ws[1] * kw.get("groups", 1)), kw, len(ws) - 2) for _, ws, kw in TRANSPOSED]
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d}

    def fn(*xs):
        return tuple(conv[d](x, w, b, **kw) for x, (w, b, kw, d) in zip(xs, params))
    _run_group(fn, [torch.randn(xs) for xs, _, _ in TRANSPOSED])


def test_pooling_paths_match_torch():
    torch.manual_seed(3)
    x2 = torch.randn(2, 5, 17, 19)
    x2[0, 1, 3, 4] = float("nan")
    x1, x3 = torch.randn(2, 3, 23), torch.randn(1, 2, 6, 7, 8)

    def fn(a, b, c):
        m, idx = F.max_pool2d(a, 3, stride=2, padding=1, ceil_mode=True, return_indices=True)
        return (F.max_pool2d(a, 2), m, idx.to(torch.float32),
                F.max_pool2d(a, (3, 2), stride=(2, 1), dilation=(2, 3)),
                F.avg_pool2d(a, 3, stride=2, padding=1, ceil_mode=True),
                F.avg_pool2d(a, 3, stride=1, padding=1, count_include_pad=False),
                F.avg_pool2d(a, 2, divisor_override=3),
                F.adaptive_avg_pool2d(a, (5, 4)), F.adaptive_max_pool2d(a, 3), F.adaptive_avg_pool2d(a, 1),
                F.max_pool1d(b, 4, stride=3, padding=2), F.avg_pool1d(b, 3), F.adaptive_avg_pool1d(b, 7),
                F.max_pool3d(c, 2, padding=1), F.avg_pool3d(c, (2, 3, 2)),
                F.adaptive_max_pool2d(a, 1), F.avg_pool2d(a, 2), F.max_pool3d(c, (1, 2, 2)),
                F.adaptive_avg_pool3d(c, 1), F.max_pool2d(a, (17, 19)))
    _run_group(fn, [x2, x1, x3])


def test_zoo_cnn_matches_torch():
    from xcomp.zoo import cnn
    model, (x,) = cnn(batch=3)
    with torch.no_grad():
        assert_close(xcomp.compile(model, target="cpp")(x), model(x))
