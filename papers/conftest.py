"""The fixture every paper's test uses: its folder's ``repro.py`` run at the quick size.

Each ``papers/<slug>/repro.py`` exposes ``reproduce(quick, out_dir) -> dict``. The folders are not
packages (every script is called ``repro.py``), so the module is loaded by path under a unique
name.
"""

import contextlib
import importlib.util
import sys

import jax
import pytest


def load_repro(folder):
    name = f"papers_{folder.name}_repro"
    spec = importlib.util.spec_from_file_location(name, folder / "repro.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(request, tmp_path_factory):
    """``reproduce(quick=True)`` of the test module's own folder, once per module.

    Under the suite's strict dtype promotion, unless the module is marked
    ``pytestmark = pytest.mark.standard_dtypes("why")`` (its repro runs optax code that strict
    promotion refuses).
    """
    folder = request.path.parent
    relaxed = request.node.get_closest_marker("standard_dtypes") is not None
    with jax.numpy_dtype_promotion("standard") if relaxed else contextlib.nullcontext():
        out_dir = tmp_path_factory.mktemp(folder.name)
        return load_repro(folder).reproduce(quick=True, out_dir=out_dir)
