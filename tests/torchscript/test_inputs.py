"""Bad `.pt` files, unsupported nodes, extra files, the tracing trap (check_inputs, TracerWarnings),
run-time raises and the FRONTENDS table."""
from __future__ import annotations

import os
import zipfile

import pytest
import torch

import xcomp
from ts_cases import sign_branch
from ts_helpers import save_load, script, trace
from helpers import assert_close
from xcomp.errors import FormatError, ScriptRaiseError, TraceCheckError, UnsupportedOpError, XcompError


@pytest.fixture(scope="module")
def good_pt(tmp_path_factory):
    return save_load(script(sign_branch), tmp_path_factory.mktemp("good"), extra={"meta.json": '{"v": 3}'})


def _rewrite_zip(src, dst, drop):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if not drop(item.filename):
                zout.writestr(item, zin.read(item.filename))


def bad_files(good, d):
    data = open(good, "rb").read()
    files = {
        "truncated": data[: len(data) // 2],
        "random": os.urandom(2048),
        "empty": b"",
    }
    paths = {}
    for name, blob in files.items():
        p = os.path.join(d, f"{name}.pt")
        open(p, "wb").write(blob)
        paths[name] = p
    paths["no_data_pkl"] = os.path.join(d, "no_data.pt")
    _rewrite_zip(good, paths["no_data_pkl"], lambda n: n.endswith("/data.pkl"))
    paths["no_code"] = os.path.join(d, "no_code.pt")
    _rewrite_zip(good, paths["no_code"], lambda n: "/code/" in n)
    paths["torch_save"] = os.path.join(d, "weights.pt")
    torch.save({"w": torch.ones(2)}, paths["torch_save"])
    paths["missing"] = os.path.join(d, "nowhere.pt")
    return paths


@pytest.mark.parametrize("kind", ["truncated", "random", "empty", "no_data_pkl", "no_code", "torch_save", "missing"])
def test_bad_pt_raises_xcomp_error_naming_the_file(good_pt, tmp_path, kind):
    path = bad_files(good_pt, str(tmp_path))[kind]
    with pytest.raises(FormatError) as e:
        xcomp.compile(path, target="reference")  # recognised at once, not on the first call
    assert os.path.basename(path) in str(e.value)
    with pytest.raises(FormatError):
        xcomp.capture(path, (torch.ones(3),))


def test_pt_path_and_extra_files(good_pt):
    from pathlib import Path
    compiled = xcomp.compile(Path(good_pt), target="reference")
    x = torch.tensor([1.0, -3.0])
    assert_close(compiled(x), x * -1)
    meta = compiled.program(optimized=False).metadata
    assert meta["torchscript.extra.meta.json"] == '{"v": 3}'
    assert meta["torchscript.file"] == str(good_pt)
    assert "from " + str(good_pt) in compiled.explain()


def test_frontend_table_chooses_torchscript(good_pt):
    from xcomp.api import FRONTENDS, frontend_for
    assert [f.name for f in FRONTENDS][-1] == "torch.export"
    assert frontend_for(good_pt).name == "torchscript"
    assert frontend_for(script(sign_branch)).name == "torchscript"
    assert frontend_for(torch.nn.Linear(2, 2)).name == "torch.export"


def _unsupported(x):
    y = torch.linalg.inv(x)
    z = torch.special.bessel_j0(x)
    return y + z


def test_unsupported_nodes_reported_at_once_with_source_lines():
    with pytest.raises(UnsupportedOpError) as e:
        xcomp.capture(script(_unsupported), (torch.eye(3),))
    msg = str(e.value)
    assert "aten::linalg_inv" in msg and "aten::special_bessel_j0" in msg
    assert "test_inputs.py" in msg and "torch.linalg.inv(x)" in msg and "torch.special.bessel_j0(x)" in msg


def _checked(x):
    if x.shape[0] > 4:
        raise ValueError("too long")
    assert bool(x.min() > -100.0), "values out of range"
    return x + 1


def test_raise_kept_in_the_program():
    """A raise whose condition is known at capture folds away; one decided by data stays."""
    compiled = xcomp.compile(script(_checked), target="reference")
    assert_close(compiled(torch.ones(3)), torch.ones(3) + 1)
    with pytest.raises(ScriptRaiseError, match="values out of range"):
        compiled(torch.full((3,), -1000.0))
    with pytest.raises(ScriptRaiseError, match="too long"):
        compiled(torch.ones(6))


def test_trace_check_finds_the_baked_branch():
    """The tracing trap: a trace of `if x.sum() > 0` on a positive input bakes in `x * 2`."""
    pos, neg = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])
    traced = trace(sign_branch, (pos,))
    compiled = xcomp.compile(traced, target="reference")
    assert_close(compiled(neg), neg * 2)  # faithful to the trace (what the user saved)
    with pytest.raises(TraceCheckError, match="check input 1: the traced module diverges"):
        xcomp.compile(traced, target="reference", check_inputs=[(pos,), (neg,)], original=sign_branch)
    ok = xcomp.compile(traced, target="reference", check_inputs=[(pos,), (pos * 3,)], original=sign_branch)
    ok(pos)
    assert "TracerWarning" in ok.explain()
    fixed = xcomp.compile(script(sign_branch), target="reference")  # the scripted twin is right on both
    assert_close(fixed(neg), neg * -1)


def test_check_inputs_needs_a_torchscript_module():
    with pytest.raises(XcompError):
        xcomp.compile(torch.nn.Linear(2, 2), target="reference", check_inputs=[(torch.ones(2),)])


def test_metadata_saved_with_the_program(good_pt, tmp_path):
    program = xcomp.capture(good_pt, (torch.ones(2),))
    xcomp.save(program, str(tmp_path / "out"))
    again = xcomp.load(str(tmp_path / "out"))
    assert again.metadata == program.metadata and again.metadata["torchscript.extra.meta.json"] == '{"v": 3}'
    (tmp_path / "out" / "metadata.json").write_text("[1, 2]")
    with pytest.raises(FormatError):
        xcomp.load(str(tmp_path / "out"))
