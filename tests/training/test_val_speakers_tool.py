"""tools/val_speakers.py rebuilds a finished run's per-speaker validation table."""

import importlib.util
import os

from evsim.training.trainer import train

from .test_trainer import _toy, small_config


def _tool():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "val_speakers.py")
    spec = importlib.util.spec_from_file_location("val_speakers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_gives_the_trainers_table(tmp_path, capsys):
    toy = _toy(tmp_path / "train.h5", 96, 1), _toy(tmp_path / "test.h5", 30, 2)
    result = train(small_config(epochs=1), *toy, tmp_path / "run")
    tool = _tool()
    assert tool.main([str(tmp_path / "run")]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    cells = ", ".join(f"{s}: {100 * v['accuracy']:.1f}" for s, v in result["validation_by_speaker"].items())
    assert row == f"| run | {100 * result['validation_accuracy']:.1f} % | {cells} |"
    assert tool.main([str(tmp_path / "nothing")]) == 1
    assert "Error: " in capsys.readouterr().err
