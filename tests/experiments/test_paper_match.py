"""report.py puts the paper's numbers (fcn-reference.md section 5) beside runs of a paper setting."""

import pytest
from runconfig import compose_config

from fcn_lit.experiments.report import paper_result
from fcn_lit.experiments.sweeps import run_identity


@pytest.mark.parametrize(("overrides", "source", "scores"), [
    (["data=voc_sbd", "model=fcn8s"], "release, seg11valid", (91.22, 77.61, 65.51, 84.54)),
    (["data=voc_sbd", "model=fcn32s"], "release, seg11valid", (90.48, 76.48, 63.63, 83.46)),
    (["data=voc_sbd", "model=fcn8s", "model.net.at_once=true"], "release at-once, seg11valid", (None, None, 65.4, None)),
    (["data=voc", "model=fcn32s", "model/backbone=googlenet"], "CVPR Table 1 (VOC2011 val, no extra data)", (None, None, 42.5, None)),
    (["data=nyud", "model=fcn16s", "data.modalities=[color,hha]"], "Table 4 (NYUDv2 RGB-HHA)", (65.4, 46.1, 34.0, 49.5)),
    (["data=siftflow", "model=fcn16s"], "Table 5 (SIFT Flow; geometric acc. 94.3)", (85.2, 51.7, 39.5, 76.1)),
])
def test_composed_paper_settings_find_their_numbers(tmp_path, overrides, source, scores):
    paper = paper_result(run_identity(compose_config(tmp_path / "run", overrides)))
    assert paper is not None and (paper.source, paper.scores) == (source, scores)


@pytest.mark.parametrize("overrides", [
    ["experiment=quickstart"],                                   # reduced trunk, synthetic data
    ["data=voc_sbd", "model=fcn8s", "model.backbone.width=0.5"],  # not the paper's network
    ["data=nyud", "model=fcn32s", "data.modalities=[depth]"],     # a modality the paper did not report
])
def test_other_settings_get_no_paper_numbers(tmp_path, overrides):
    assert paper_result(run_identity(compose_config(tmp_path / "run", overrides))) is None
