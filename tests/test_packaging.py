"""A regular (non-editable) wheel: the folder mapping, package data, and a core-only import."""
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), ROOT], check=True, capture_output=True)
    (path,) = [out / f for f in os.listdir(out) if f.endswith(".whl")]
    return path


def test_wheel_maps_folders_under_xcomp(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"xcomp"}
    for needed in ("xcomp/frontends/torch_export.py", "xcomp/backends/mlx/target.py",
                   "xcomp/templates/cuda/row.j2", "xcomp/templates/metal/elementwise.j2",
                   "xcomp/templates/common/math.j2", "xcomp/templates/cpp/unit.j2", "xcomp/templates/cpp/ops.h"):
        assert needed in names


def test_installed_wheel_imports_with_core_only(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    code = ("import sys, xcomp, xcomp.backends.kernels.codegen as c; "
            "assert xcomp.__file__.startswith(sys.argv[1]), xcomp.__file__; "
            "assert not any(m.split('.')[0] in ('torch', 'mlx', 'coremltools') for m in sys.modules), "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mlx')); "
            "from xcomp.backends.kernels.target import source; print('ok')")
    env = dict(os.environ, PYTHONPATH=str(site))
    r = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
