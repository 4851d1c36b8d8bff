"""rnnkit.interop without torch: importing rnnkit never imports torch, and the
conversions say that they need it. (The torch equality tests are in
test_interop.py and skip when torch is absent.)"""

import subprocess
import sys

import pytest

import rnnkit
from rnnkit import interop


def test_importing_rnnkit_does_not_import_torch():
    code = "import sys, rnnkit; rnnkit.interop.to_torch; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("convert", [interop.to_torch, interop.from_torch])
def test_conversions_say_they_need_torch(monkeypatch, convert):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match=r"rnnkit.interop needs PyTorch \(pip install torch\)"):
        convert(rnnkit.BasicRNNCell(2, input_depth=3))
