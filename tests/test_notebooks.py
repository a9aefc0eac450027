"""The demo notebooks execute top to bottom under papermill (their assertions
are the checks)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path("workflow/notebooks")
KERNEL = "python3"
# small parameter overrides exercise the papermill `parameters` cell and keep it quick
CASES = {
    "jax_hello_world.ipynb": {"seed": 1, "n": 256, "repeats": 3},
    "custom_gradients.ipynb": {"seed": 1, "n": 200},
}


def _kernel_available():
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return False
    return KERNEL in KernelSpecManager().find_kernel_specs()


@pytest.mark.parametrize("name", sorted(CASES))
def test_notebook_committed_clean(name):
    nb = json.loads((NOTEBOOKS / name).read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("name", sorted(CASES))
def test_notebook_executes(name, tmp_path):
    papermill = pytest.importorskip("papermill")
    if not _kernel_available():
        pytest.skip(f"jupyter kernel {KERNEL!r} not installed")
    out = tmp_path / name
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), kernel_name=KERNEL,
                               parameters=CASES[name], progress_bar=False)
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] if c["cell_type"] == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
