import numpy as np
import pytest
from ondisk import write_context as make_context

from fcn_lit.data import PASCALContext
from fcn_lit.errors import BadSampleError

# Indices from the official label lists (classes-400.txt, classes-59.txt): full label -> 59-class index.
OFFICIAL = {2: 1, 397: 11, 19: 52, 80: 28, 1: 0, 81: 0, 304: 0, 0: 0}


def test_context_maps_the_full_labels_to_59_classes_and_background(tmp_path):
    full = np.array(list(OFFICIAL), dtype=np.uint16).repeat(3).reshape(4, 6)
    make_context(tmp_path, full)
    ds = PASCALContext(tmp_path, "train")
    assert ds.num_classes == 60 and ds.class_names[0] == "background" and ds.class_names[11] == "diningtable"
    image, target = ds[0]
    np.testing.assert_array_equal(target, np.vectorize(OFFICIAL.get)(full))
    assert image.shape == (4, 6, 3)


def test_context_label_outside_the_list_names_the_file(tmp_path):
    make_context(tmp_path, np.full((4, 4), 460, np.uint16))
    with pytest.raises(BadSampleError, match=r"trainval/2008_000002.mat: LabelMap values \[460\]"):
        PASCALContext(tmp_path, "train")[0]
