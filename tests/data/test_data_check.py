import numpy as np
from ondisk import write_palette_png
from rich.console import Console

from fcn_lit.data import VOC
from fcn_lit.data.check import check_dataset, main


def test_check_counts_sizes_and_class_pixels_like_numpy(make_voc):
    root, masks = make_voc({"train": 5})
    report = check_dataset(VOC(root, "train"), progress=False)
    expected = sum(np.bincount(m.ravel(), minlength=256) for m in masks.values())
    np.testing.assert_array_equal(report.pixels["semantic"], expected)
    assert sum(report.sizes.values()) == 5 and report.sizes[(20, 28)] == 2 and not report.problems


def test_check_command_reports_every_problem_with_its_file(make_voc):
    root, _ = make_voc({"train": 4, "val": 2})
    bad = np.zeros((24, 20), np.uint8)
    bad[0, 0] = 77
    write_palette_png(root / "SegmentationClass" / "2011_000001.png", bad)
    jpg = root / "JPEGImages" / "2011_000002.jpg"
    jpg.write_bytes(jpg.read_bytes()[:200])
    (root / "SegmentationClass" / "2011_000004.png").unlink()
    console = Console(record=True, width=300)
    listing = root.parent / "problems.txt"
    status = main(["data=voc", f"data.root={root}", "data.val_split=val"], console=console, listing=listing)
    out = console.export_text()
    assert status == 1
    assert str(listing) in out and len(listing.read_text().splitlines()) == 3 + 2  # problems + split headings
    assert "2011_000001.png: label values [77]" in out
    assert "2011_000002.jpg: cannot read the image" in out
    assert "2011_000004.png does not exist" in out
    assert "voc train (train): 4 samples, 2 problems" in out and "voc val (val): 2 samples, 1 problems" in out
    assert "person" in out and "3 problems" in out


def test_check_command_reports_a_wrong_root(tmp_path):
    console = Console(record=True, width=300)
    assert main(["data=voc", f"data.root={tmp_path}/nowhere"], console=console) == 1
    assert f"{tmp_path}/nowhere/JPEGImages does not exist" in console.export_text()


def test_check_command_prints_the_median_frequency_weights_of_the_training_split(make_voc):
    root, masks = make_voc({"train": 4, "val": 2})
    console = Console(record=True, width=300)
    main(["data=voc", f"data.root={root}", "data.val_split=val"], console=console)
    out = console.export_text()
    train = [m for name, m in masks.items() if name in (root / "ImageSets" / "Segmentation" / "train.txt").read_text().split()]
    assert len(train) == 4
    freq = {}
    for c in range(21):
        holding = [m for m in train if (m == c).any()]
        if holding:
            freq[c] = sum(int((m == c).sum()) for m in holding) / sum(int((m != 255).sum()) for m in holding)
    median = float(np.median(list(freq.values())))
    table = out[out.index("median-freq weight"):out.index("voc val")]
    rows = {cells[1].strip(): cells[5].strip() for cells in (line.split("│") for line in table.splitlines())
            if len(cells) == 7}
    assert {c: rows[str(c)] for c in freq} == {c: f"{median / f:.4f}" for c, f in freq.items()}


def test_many_problems_print_a_summary_per_kind_and_list_them_all_in_a_file(make_voc, tmp_path):
    """30 missing masks and 2 bad labels: two kinds, three examples each, the full list in a file."""
    root, _ = make_voc({"train": 32})
    ids = (root / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    for sample in ids[:30]:
        (root / "SegmentationClass" / f"{sample}.png").unlink()
    for sample, size in zip(ids[30:], [(20, 28), (24, 20)]):  # the sizes make_voc gave them
        bad = np.zeros(size, np.uint8)
        bad[0, 0] = 77
        write_palette_png(root / "SegmentationClass" / f"{sample}.png", bad)
    console = Console(record=True, width=300)
    listing = tmp_path / "all.txt"
    assert main(["data=voc", f"data.root={root}", "data.val_split=null"], console=console, listing=listing) == 1
    out = console.export_text()
    assert "30 x" in out and "2 x" in out and "... and 27 more" in out
    assert sum(sample in out for sample in ids[:30]) == 3
    listed = listing.read_text()
    assert all(sample in listed for sample in ids) and len(out.splitlines()) < 40
