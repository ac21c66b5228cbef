"""The benchmarks' own scoring, rewritten here from their sources (not from fcn_lit) for the tests:
cityscapesScripts 2.3.0's helpers/labels.py and evaluation/evalPixelLevelSemanticLabeling.py
(class and category IoU; the instance-weighted iIoU is left out), and the ADE20K challenge
toolkit's evaluationCode/utils_eval.py (CSAILVision/sceneparsing) with demoEvaluation.m's mean."""

from __future__ import annotations

import math
from collections import namedtuple
from pathlib import Path

import numpy as np
from PIL import Image

Label = namedtuple("Label", "name id trainId category ignoreInEval")

# labels.py, every label: name, id, trainId, category, ignoreInEval.
LABELS = [
    Label("unlabeled", 0, 255, "void", True),
    Label("ego vehicle", 1, 255, "void", True),
    Label("rectification border", 2, 255, "void", True),
    Label("out of roi", 3, 255, "void", True),
    Label("static", 4, 255, "void", True),
    Label("dynamic", 5, 255, "void", True),
    Label("ground", 6, 255, "void", True),
    Label("road", 7, 0, "flat", False),
    Label("sidewalk", 8, 1, "flat", False),
    Label("parking", 9, 255, "flat", True),
    Label("rail track", 10, 255, "flat", True),
    Label("building", 11, 2, "construction", False),
    Label("wall", 12, 3, "construction", False),
    Label("fence", 13, 4, "construction", False),
    Label("guard rail", 14, 255, "construction", True),
    Label("bridge", 15, 255, "construction", True),
    Label("tunnel", 16, 255, "construction", True),
    Label("pole", 17, 5, "object", False),
    Label("polegroup", 18, 255, "object", True),
    Label("traffic light", 19, 6, "object", False),
    Label("traffic sign", 20, 7, "object", False),
    Label("vegetation", 21, 8, "nature", False),
    Label("terrain", 22, 9, "nature", False),
    Label("sky", 23, 10, "sky", False),
    Label("person", 24, 11, "human", False),
    Label("rider", 25, 12, "human", False),
    Label("car", 26, 13, "vehicle", False),
    Label("truck", 27, 14, "vehicle", False),
    Label("bus", 28, 15, "vehicle", False),
    Label("caravan", 29, 255, "vehicle", True),
    Label("trailer", 30, 255, "vehicle", True),
    Label("train", 31, 16, "vehicle", False),
    Label("motorcycle", 32, 17, "vehicle", False),
    Label("bicycle", 33, 18, "vehicle", False),
    Label("license plate", -1, -1, "vehicle", True),
]
ID2LABEL = {label.id: label for label in LABELS}
CATEGORY2LABELS: dict[str, list[Label]] = {}
for _label in LABELS:
    CATEGORY2LABELS.setdefault(_label.category, []).append(_label)
EVAL_LABELS = [label.id for label in LABELS if label.id >= 0]  # generateMatrix


def cityscapes_confusion(gt_label_ids: list[np.ndarray], predictions: list[np.ndarray]) -> np.ndarray:
    """evaluatePair over every pair: rows = ground-truth label id, columns = predicted label id."""
    conf = np.zeros((max(EVAL_LABELS) + 1, max(EVAL_LABELS) + 1), dtype=np.ulonglong)
    for gt, pred in zip(gt_label_ids, predictions, strict=True):
        assert gt.shape == pred.shape and pred.ndim == 2
        assert set(np.unique(gt)) <= set(EVAL_LABELS) and set(np.unique(pred)) <= set(EVAL_LABELS)
        np.add.at(conf, (gt.astype(np.int64).ravel(), pred.astype(np.int64).ravel()), 1)
    return conf


def iou_for_label(label: int, conf: np.ndarray) -> float:
    """getIouScoreForLabel."""
    if ID2LABEL[label].ignoreInEval:
        return float("nan")
    tp = np.longlong(conf[label, label])
    fn = np.longlong(conf[label, :].sum()) - tp
    not_ignored = [lab for lab in EVAL_LABELS if not ID2LABEL[lab].ignoreInEval and lab != label]
    fp = np.longlong(conf[not_ignored, label].sum())
    denom = tp + fp + fn
    return float("nan") if denom == 0 else float(tp) / denom


def iou_for_category(category: str, conf: np.ndarray) -> float:
    """getIouScoreForCategory."""
    ids = [label.id for label in CATEGORY2LABELS[category] if not label.ignoreInEval and label.id in EVAL_LABELS]
    if not ids:
        return float("nan")
    tp = np.longlong(conf[ids, :][:, ids].sum())
    fn = np.longlong(conf[ids, :].sum()) - tp
    others = [lab for lab in EVAL_LABELS if not ID2LABEL[lab].ignoreInEval and ID2LABEL[lab].category != category]
    fp = np.longlong(conf[others, :][:, ids].sum())
    denom = tp + fp + fn
    return float("nan") if denom == 0 else float(tp) / denom


def score_average(scores: dict[str, float]) -> float:
    """getScoreAverage: the mean of the scores that are not NaN."""
    valid = [s for s in scores.values() if not math.isnan(s)]
    return sum(valid) / len(valid) if valid else float("nan")


def cityscapes_scores(conf: np.ndarray) -> dict:
    """evaluateImgLists' results: classScores, categoryScores and their averages."""
    classes = {ID2LABEL[label].name: iou_for_label(label, conf) for label in EVAL_LABELS}
    categories = {category: iou_for_category(category, conf) for category in CATEGORY2LABELS}
    return {"classScores": classes, "categoryScores": categories,
            "averageScoreClasses": score_average(classes), "averageScoreCategories": score_average(categories)}


def find_cityscapes_prediction(results: Path, gt_file: Path) -> Path:
    """getPrediction: the one file under ``results`` matching ``<city>_<seq>_<frame>*.png``."""
    city, sequence, frame = gt_file.name.split("_")[:3]
    found = sorted(results.rglob(f"{city}_{sequence}_{frame}*.png"))
    assert len(found) == 1, f"{len(found)} predictions for {gt_file}: {found}"
    return found[0]


def evaluate_cityscapes_folder(cityscapes_root: Path, results: Path, split: str = "val") -> dict:
    """The evaluator as run with CITYSCAPES_DATASET and CITYSCAPES_RESULTS set (gtFine/<split>)."""
    gt_files = sorted((cityscapes_root / "gtFine" / split).glob("*/*_gtFine_labelIds.png"))
    assert gt_files
    gts = [np.array(Image.open(f)) for f in gt_files]
    preds = [np.array(Image.open(find_cityscapes_prediction(results, f))) for f in gt_files]
    return cityscapes_scores(cityscapes_confusion(gts, preds))


def ade20k_intersection_and_union(pred: np.ndarray, label: np.ndarray, num_class: int = 150):
    """utils_eval.intersectionAndUnion."""
    pred = pred * (label > 0)
    intersection = pred * (pred == label)
    area_intersection, _ = np.histogram(intersection, bins=num_class, range=(1, num_class))
    area_pred, _ = np.histogram(pred, bins=num_class, range=(1, num_class))
    area_label, _ = np.histogram(label, bins=num_class, range=(1, num_class))
    return area_intersection, area_pred + area_label - area_intersection


def evaluate_ade20k_folder(predictions: Path, annotations: Path, num_class: int = 150) -> float:
    """demoEvaluation: each prediction paired with the annotation of its name; the mean IoU over all
    ``num_class`` classes, eps in the denominator (a class absent from both counts as 0)."""
    files = sorted(predictions.glob("*.png"))
    assert files
    intersection = union = 0
    for file in files:
        pred, label = np.array(Image.open(file)), np.array(Image.open(annotations / file.name))
        area_i, area_u = ade20k_intersection_and_union(pred, label, num_class)
        intersection, union = intersection + area_i, union + area_u
    return float(np.mean(intersection / (np.spacing(1) + union)))
