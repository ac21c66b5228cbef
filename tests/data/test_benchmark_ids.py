"""Each data set's benchmark ids (what predict.py format=benchmark writes) against their sources:
cityscapesScripts' labels.py, the ADE20K challenge's annotation values, PASCAL-Context's full label
list; and each table read back through the data set's own loader gives the class indices again."""

import numpy as np
import pytest
from official_eval import LABELS
from ondisk import write_context
from PIL import Image
from test_ade20k import write_ade20k
from test_cityscapes import write_cityscapes

from fcn_lit.data import (
    ADE20K,
    SBD,
    VOC,
    Cityscapes,
    NYUDv2,
    PASCALContext,
    SegmentationFolder,
    SIFTFlow,
    Synthetic,
)
from fcn_lit.data.base import packaged_list
from fcn_lit.data.context import label_lookup

# The 59 classes' labels in PASCAL-Context's labels.txt, as the Detail API users list them
# (mmsegmentation's and PyTorch-Encoding's converters), background 0 first.
CONTEXT_59 = [0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33, 162, 420, 454,
              295, 296, 427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68, 326, 72, 458, 34, 207, 80, 355,
              85, 347, 220, 349, 360, 98, 187, 104, 105, 366, 189, 368, 113, 115]


def test_cityscapes_writes_labels_py_ids_and_scores_its_categories():
    trained = [label for label in LABELS if not label.ignoreInEval]
    assert len(trained) == 19 and len(Cityscapes.benchmark_ids) == 19
    names = packaged_list("classes/cityscapes.txt")
    for label in trained:
        assert Cityscapes.benchmark_ids[label.trainId] == label.id, label
        assert Cityscapes.categories[label.trainId] == label.category, label
        assert names[label.trainId] == label.name, label
    assert (Cityscapes.benchmark_ids[0], Cityscapes.benchmark_ids[13], Cityscapes.benchmark_ids[18]) == (7, 26, 33)


def test_cityscapes_ids_read_back_as_the_train_ids(tmp_path):
    write_cityscapes(tmp_path, "val", ["frankfurt_000000_000294"], size=(1, 19))
    ids = np.array([Cityscapes.benchmark_ids], dtype=np.uint8)
    Image.fromarray(ids).save(tmp_path / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png")
    _, target = Cityscapes(tmp_path, "val")[0]
    np.testing.assert_array_equal(target[0], np.arange(19))


def test_ade20k_writes_the_challenge_values_1_to_150(tmp_path):
    # The challenge's annotations: 0 "other objects", class k of objectInfo150.txt as k (1-based).
    assert ADE20K.benchmark_ids == tuple(range(1, 151)) and ADE20K.categories is None
    write_ade20k(tmp_path, "validation", ["ADE_val_00000001"], size=(1, 150))
    Image.fromarray(np.array([ADE20K.benchmark_ids], dtype=np.uint8)).save(
        tmp_path / "ADEChallengeData2016/annotations/validation/ADE_val_00000001.png")
    _, target = ADE20K(tmp_path, "validation")[0]
    np.testing.assert_array_equal(target[0], np.arange(150))


def test_context_writes_the_full_list_labels_of_its_59_classes(tmp_path):
    ids = PASCALContext.benchmark_ids
    assert len(ids) == 60 and ids[0] == 0 and sorted(ids) == sorted(CONTEXT_59)
    full = packaged_list("classes/context459.txt")
    names59 = packaged_list("classes/context59.txt")
    spelled = {"diningtable": "table", "bedcloth": "bedclothes", "clothes": "cloth"}  # the 59-class list's names
    for index, label in enumerate(ids[1:], start=1):
        assert full[label - 1].replace(" ", "") == spelled.get(names59[index], names59[index])
    # Read back through the data set's own mapping from the .mat LabelMap: the 60 class indices.
    write_context(tmp_path, np.array([ids, ids], dtype=np.uint16))  # two rows: a 1-row .mat loads squeezed
    _, target = PASCALContext(tmp_path, "train")[0]
    np.testing.assert_array_equal(target, np.tile(np.arange(60), (2, 1)))
    assert label_lookup()[list(ids)].tolist() == list(range(60))


@pytest.mark.parametrize("dataset", [VOC, SBD, NYUDv2, SIFTFlow, SegmentationFolder, Synthetic])
def test_other_data_sets_write_their_class_indices(dataset):
    assert dataset.benchmark_ids is None and dataset.categories is None
