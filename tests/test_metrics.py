"""SegmentationMetrics against a plain numpy transcription of score.py, and the class and category IoU
against the benchmarks' own definitions (tests/official_eval.py)."""

import numpy as np
import pytest
import torch
from official_eval import LABELS, ade20k_intersection_and_union, cityscapes_confusion, cityscapes_scores

from fcn_lit.data import Cityscapes
from fcn_lit.metrics import SegmentationMetrics, category_iu

N_CLASSES = 6


def fast_hist(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """score.py: rows = ground truth a, columns = prediction b, labels outside [0, n) skipped."""
    k = (a >= 0) & (a < n)
    return np.bincount(n * a[k].astype(int) + b[k], minlength=n**2).reshape(n, n)


def scores(hist: np.ndarray) -> dict[str, np.ndarray]:
    """score.py's compute_hist metrics."""
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.diag(hist) / hist.sum(1)
        iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    freq = hist.sum(1) / hist.sum()
    return {
        "pixel_acc": np.diag(hist).sum() / hist.sum(),
        "mean_acc": np.nanmean(acc),
        "mean_iu": np.nanmean(iu),
        "fw_iu": (freq[freq > 0] * iu[freq > 0]).sum(),
        "per_class_iu": iu,
    }


def assert_scores_equal(result: dict, expected: dict) -> None:
    assert set(result) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(
            result[key].numpy(), value, rtol=1e-12, equal_nan=True, err_msg=key
        )


def random_batch(seed: int, n_images: int = 3, size: int = 17) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels where class 4 is absent from both and class 5 only predicted."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 4, (n_images, size, size), generator=g)
    void = torch.rand(target.shape, generator=g)
    target[void < 0.1] = 255
    target[(void >= 0.1) & (void < 0.15)] = N_CLASSES + 2  # >= n: skipped like void
    logits = torch.randn(n_images, N_CLASSES, size, size, generator=g)
    logits[:, 4] = -10.0
    return logits, target


def test_matches_score_py_with_void_and_absent_classes() -> None:
    logits, target = random_batch(0)
    metric = SegmentationMetrics(N_CLASSES)
    metric.update(logits, target)
    pred = logits.argmax(1).numpy()
    expected = scores(fast_hist(target.numpy().flatten(), pred.flatten(), N_CLASSES))
    assert np.isnan(expected["per_class_iu"][4]) and expected["per_class_iu"][5] == 0
    assert_scores_equal(metric.compute(), expected)


def test_logits_indices_and_uint8_labels_agree() -> None:
    logits, target = random_batch(1)
    from_logits, from_indices = SegmentationMetrics(N_CLASSES), SegmentationMetrics(N_CLASSES)
    from_logits.update(logits, target)
    from_indices.update(logits.argmax(1).to(torch.int32), target.to(torch.uint8))
    assert torch.equal(from_logits.confmat, from_indices.confmat)
    assert from_logits.confmat.dtype == torch.int64


def test_several_updates_equal_one_on_the_concatenation() -> None:
    batches = [random_batch(seed) for seed in range(3)]
    incremental, at_once = SegmentationMetrics(N_CLASSES), SegmentationMetrics(N_CLASSES)
    for logits, target in batches:
        incremental.update(logits, target)
    at_once.update(torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))
    assert torch.equal(incremental.confmat, at_once.confmat)
    assert_scores_equal(incremental.compute(), {k: v.numpy() for k, v in at_once.compute().items()})


def test_split_across_processes_merges_to_the_whole() -> None:
    """What DDP's sum reduction does: per-process confusion matrices add up to the split's."""
    (logits_a, target_a), (logits_b, target_b) = random_batch(2), random_batch(3)
    rank0, rank1, whole = (SegmentationMetrics(N_CLASSES) for _ in range(3))
    rank0.update(logits_a, target_a)
    rank1.update(logits_b, target_b)
    whole.update(torch.cat([logits_a, logits_b]), torch.cat([target_a, target_b]))
    assert torch.equal(rank0.confmat + rank1.confmat, whole.confmat)
    rank0.merge_state(rank1)
    assert_scores_equal(rank0.compute(), {k: v.numpy() for k, v in whole.compute().items()})


def test_ignore_index_inside_the_class_range() -> None:
    logits, target = random_batch(4)
    metric = SegmentationMetrics(N_CLASSES, ignore_index=0)
    metric.update(logits, target)
    labels = target.numpy().flatten()
    keep = labels != 0
    expected = scores(fast_hist(labels[keep], logits.argmax(1).numpy().flatten()[keep], N_CLASSES))
    assert_scores_equal(metric.compute(), expected)


def test_score_classes_leave_out_absent_classes() -> None:
    """SIFT Flow: left-out classes' pixels and IUs leave the means; predicting one is an error."""
    logits, target = random_batch(5)
    scored = [0, 1, 2, 3]
    full, subset = (
        SegmentationMetrics(N_CLASSES),
        SegmentationMetrics(N_CLASSES, score_classes=scored),
    )
    full.update(logits, target)
    subset.update(logits, target)
    # Class 5 is predicted but never labelled: its IU of 0 drags down the full mean only.
    expected = scores(full.confmat.numpy())
    result = subset.compute()
    assert result["mean_iu"].item() == pytest.approx(np.mean(expected["per_class_iu"][scored]))
    assert result["mean_iu"] > full.compute()["mean_iu"]
    for key in ("pixel_acc", "mean_acc", "fw_iu"):  # no scored pixel is labelled 4 or 5
        assert result[key].item() == pytest.approx(expected[key], rel=1e-12)

    # Ground-truth pixels of a left-out class are not scored at all.
    target[target == 3] = 5
    subset_without_3 = SegmentationMetrics(N_CLASSES, score_classes=[0, 1, 2])
    subset_without_3.update(logits, target)
    labels, pred = target.numpy().flatten(), logits.argmax(1).numpy().flatten()
    keep = np.isin(labels, [0, 1, 2])
    hist = fast_hist(labels[keep], pred[keep], N_CLASSES)
    assert subset_without_3.compute()["pixel_acc"].item() == pytest.approx(
        np.trace(hist) / hist.sum()
    )


@pytest.mark.parametrize(
    ("preds", "target", "message"),
    [
        (torch.randn(2, 5, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long), "5 channels"),
        (torch.randn(2, N_CLASSES, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long), "do not match"),
        (
            torch.full((2, 4, 4), N_CLASSES),
            torch.zeros(2, 4, 4, dtype=torch.long),
            "expected \\[0, 6\\)",
        ),
        (torch.rand(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long), "integer"),
    ],
)
def test_bad_input_is_named(preds: torch.Tensor, target: torch.Tensor, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        SegmentationMetrics(N_CLASSES).update(preds, target)


def test_bad_score_classes_are_named() -> None:
    with pytest.raises(ValueError, match="score_classes=\\[0, 7\\]"):
        SegmentationMetrics(N_CLASSES, score_classes=[0, 7])


def cityscapes_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """gtFine label ids (void labels included) and predicted train ids: the last seven classes have
    no ground truth, three of them are predicted (IoU 0), four not (NaN)."""
    rng = np.random.default_rng(seed)
    ids = [label.id for label in LABELS if label.id >= 0 and label.trainId not in range(12, 19)]
    gt = rng.choice(ids, size=(2, 30, 40))
    pred = rng.integers(0, 15, size=gt.shape)
    return gt, pred


def test_class_and_category_iou_are_the_cityscapes_evaluators():
    """SegmentationMetrics' mean IU and category_iu on train ids against evalPixelLevelSemanticLabeling's
    definitions on label ids (tests/official_eval.py); score.py's mean IU is the same number."""
    train_id = {label.id: label.trainId for label in LABELS if label.id >= 0}
    label_id = {label.trainId: label.id for label in LABELS if not label.ignoreInEval}
    gt, pred = cityscapes_case(0)
    metric = SegmentationMetrics(19)
    metric.update(torch.from_numpy(pred), torch.from_numpy(np.vectorize(train_id.get)(gt)))
    ours = metric.compute()
    official = cityscapes_scores(cityscapes_confusion(list(gt), list(np.vectorize(label_id.get)(pred))))
    trained = sorted((label for label in LABELS if not label.ignoreInEval), key=lambda label: label.trainId)
    classes = [official["classScores"][label.name] for label in trained]
    np.testing.assert_allclose(ours["per_class_iu"].numpy(), classes, rtol=1e-12, equal_nan=True)
    assert np.isnan(classes).sum() == 4 and classes.count(0.0) == 3
    assert ours["mean_iu"].item() == pytest.approx(official["averageScoreClasses"], rel=1e-12)
    assert scores(metric.confmat.numpy())["mean_iu"] == pytest.approx(official["averageScoreClasses"], rel=1e-12)

    categories = category_iu(metric.confmat, Cityscapes.categories)
    official_categories = {k: v for k, v in official["categoryScores"].items() if k != "void"}
    assert np.isnan(official["categoryScores"]["void"]) and list(categories["per_category_iu"]) == list(official_categories)
    np.testing.assert_allclose(list(categories["per_category_iu"].values()), list(official_categories.values()), rtol=1e-12)
    assert categories["mean_category_iu"] == pytest.approx(official["averageScoreCategories"], rel=1e-12)


def test_a_category_without_pixels_is_left_out_of_the_mean():
    confmat = torch.tensor([[5, 1, 0], [2, 4, 0], [0, 0, 0]])
    result = category_iu(confmat, ["a", "a", "b"])
    assert result["per_category_iu"]["a"] == 1.0 and np.isnan(result["per_category_iu"]["b"])
    assert result["mean_category_iu"] == 1.0
    with pytest.raises(ValueError, match="2 categories for 3 classes"):
        category_iu(confmat, ["a", "b"])


def test_ade20k_toolkit_counts_a_class_absent_from_both_as_zero():
    """The challenge's mean runs over all 150 classes (eps in the denominator), fcn-lit's (and
    score.py's, and Cityscapes') over the classes with pixels: equal when every class has ground truth."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 151, size=(60, 60))
    label.flat[:150] = np.arange(1, 151)
    pred = rng.integers(1, 151, size=label.shape)
    metric = SegmentationMetrics(150)
    metric.update(torch.from_numpy(pred - 1), torch.from_numpy(np.where(label == 0, 255, label - 1)))
    area_i, area_u = ade20k_intersection_and_union(pred, label)
    assert metric.compute()["mean_iu"].item() == pytest.approx(np.mean(area_i / (np.spacing(1) + area_u)), rel=1e-9)

    label[label == 150], pred[pred == 150] = 149, 149  # "flag" gone from both
    metric.reset()
    metric.update(torch.from_numpy(pred - 1), torch.from_numpy(np.where(label == 0, 255, label - 1)))
    area_i, area_u = ade20k_intersection_and_union(pred, label)
    toolkit = area_i / (np.spacing(1) + area_u)
    assert toolkit[149] == 0 and np.isnan(metric.compute()["per_class_iu"][149])
    assert metric.compute()["mean_iu"].item() == pytest.approx(toolkit[:149].mean(), rel=1e-9)
