"""Model directories that are not ours, at the library level (the CLI cases: tests/corpus_cases.py)."""

from __future__ import annotations

import json

import pytest


def test_model_dir_not_ours(tmp_path):
    from edgelstm.errors import ModelDirError
    from edgelstm.models.config import ModelConfig

    (tmp_path / "m").mkdir()
    with pytest.raises(ModelDirError, match="not an edgelstm model directory"):
        ModelConfig.load(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelDirError, match="not an edgelstm model configuration"):
        ModelConfig.load(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"format": "edgelstm-model", "format_version": 99}))
    with pytest.raises(ModelDirError, match="format version 99 is not supported"):
        ModelConfig.load(tmp_path / "m")
