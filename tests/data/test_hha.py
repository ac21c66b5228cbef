"""HHA from depth: a synthetic room checked against its geometry, the MATLAB output on real depth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from fcn_lit.data.hha import NYUD_CAMERA, convert_folder, depth_to_hha, main, nyud_camera

CAMERA = np.array([[200.0, 0.0, 40.5], [0.0, 210.0, 30.5], [0.0, 0.0, 1.0]])
CAMERA_HEIGHT = 1.5  # metres above the floor
WALL_DISTANCE = 3.0  # metres ahead of the camera, along the horizontal


def rotation(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Camera-to-world rotation; camera axes x right, y down, z forward; world y up."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    flip = np.diag([1.0, -1.0, 1.0])  # camera y (down) to world y (up) when level
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])  # looks down by p
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return pitch @ flip @ roll


def room(height=60, width=80, pitch=25.0, roll=8.0):
    """Ray-cast a floor (world y = -CAMERA_HEIGHT) and a wall facing the camera (world z =
    WALL_DISTANCE): depth (m), height above the floor (cm) and which surface each pixel sees."""
    v, u = np.mgrid[1:height + 1, 1:width + 1].astype(float)  # 1-based pixel coordinates
    rays = np.stack([(u - CAMERA[0, 2]) / CAMERA[0, 0], (v - CAMERA[1, 2]) / CAMERA[1, 1], np.ones_like(u)], -1)
    world = rays @ rotation(pitch, roll).T  # camera z = 1 along each ray, so t is the depth
    with np.errstate(divide="ignore"):
        t_floor = np.where(world[..., 1] < 0, -CAMERA_HEIGHT / world[..., 1], np.inf)
        t_wall = np.where(world[..., 2] > 0, WALL_DISTANCE / world[..., 2], np.inf)
    on_floor = t_floor < t_wall
    depth = np.minimum(t_floor, t_wall)
    height_cm = 100 * (CAMERA_HEIGHT + depth * world[..., 1])
    return depth, height_cm, on_floor


def away_from_crease(on_floor: np.ndarray, radius: int) -> np.ndarray:
    """Pixels whose (2r+1)^2 window sees one surface only."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    labels = on_floor.astype(np.uint8)
    return cv2.erode(labels, kernel) == cv2.dilate(labels, kernel)


def test_room_gives_its_disparity_height_and_angle():
    depth, height_cm, on_floor = room()
    assert on_floor.any() and (~on_floor).any()
    hha = depth_to_hha(depth, CAMERA).astype(float)
    np.testing.assert_array_equal(hha[..., 0], np.clip(np.floor(31000 / np.maximum(100 * depth, 100) + 0.5), 0, 255))
    # the crease's mixed normals tilt the gravity estimate a little: up to 1.2 cm at 3 m
    assert np.abs(hha[..., 1] - np.clip(height_cm, 0, 255)).max() <= 1.5
    clean = away_from_crease(on_floor, 3)
    np.testing.assert_array_equal(hha[..., 2][clean & on_floor], 38)  # normal along gravity: 0 degrees
    np.testing.assert_array_equal(hha[..., 2][clean & ~on_floor], 128)  # wall: 90 degrees


def seen_lines(seen: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """How many rows and how many columns of each pixel's (2r+1)^2 window hold a seen pixel
    (with fewer than 2 of either the window's points are collinear and fix no plane)."""
    k = 2 * radius + 1
    lines = []
    for axis in (1, 0):
        any_seen = ndimage.maximum_filter1d(seen.astype(int), k, axis=axis, mode="constant")
        lines.append(ndimage.correlate1d(any_seen, np.ones(k, int), axis=1 - axis, mode="constant"))
    return lines[0], lines[1]


def test_missing_pixels_leave_the_fits_and_unseen_windows_read_180_degrees():
    depth, _, on_floor = room(pitch=40.0, roll=0.0)  # floor only (gravity must lie within 45 degrees of the image y axis)
    assert on_floor.all()
    missing = np.zeros_like(on_floor)
    missing[20:40, 30:50] = True
    noisy = depth.copy()
    noisy[missing] = 0.25  # what the sensor saw there must not matter
    hha = depth_to_hha(noisy, CAMERA, missing)
    angle = hha[..., 2]
    seen_rows, seen_cols = seen_lines(~missing, 3)
    np.testing.assert_array_equal(angle[seen_rows == 0], 218)  # no point to fit: NaN, read as 180 degrees
    np.testing.assert_array_equal(angle[(seen_rows >= 2) & (seen_cols >= 2)], 38)  # a plane is fixed
    assert (seen_rows == 0).sum() == 14 * 14
    np.testing.assert_array_equal(hha[..., 0], depth_to_hha(noisy, CAMERA, np.zeros_like(missing))[..., 0])


def test_default_missing_is_zero_depth():
    depth, _, _ = room()
    depth[10:20, 10:20] = 0
    np.testing.assert_array_equal(depth_to_hha(depth, CAMERA), depth_to_hha(depth, CAMERA, depth == 0))


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="shape"):
        depth_to_hha(np.ones((4, 4, 1)), CAMERA)
    with pytest.raises(ValueError, match="missing has shape"):
        depth_to_hha(np.ones((4, 4)), CAMERA, np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="every pixel is missing"):
        depth_to_hha(np.zeros((4, 4)), CAMERA)
    with pytest.raises(ValueError, match="--fx --fy --cx --cy"):
        nyud_camera(100, 100)
    np.testing.assert_allclose(nyud_camera(425, 560)[:2, 2], NYUD_CAMERA[:2, 2] - [40, 44])


def write_depth(path, depth_m, scale):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.round(depth_m / scale).astype(np.uint16))


def test_folder_command_converts_every_png(tmp_path, capsys):
    depth, _, _ = room()
    raw = depth.copy()
    raw[5:15, 5:15] = 0
    for name in ("a.png", "b.png"):
        write_depth(tmp_path / "depth" / name, depth, 1e-4)
        write_depth(tmp_path / "raw" / name, raw, 1e-4)
    fx, fy, cx, cy = (str(CAMERA[0, 0]), str(CAMERA[1, 1]), str(CAMERA[0, 2]), str(CAMERA[1, 2]))
    argv = [str(tmp_path / "depth"), str(tmp_path / "hha"), "--raw", str(tmp_path / "raw"), "--scale", "1e-4",
            "--fx", fx, "--fy", fy, "--cx", cx, "--cy", cy]
    assert main(argv) == 0
    assert "wrote 2 HHA images" in capsys.readouterr().out
    quantised = np.round(depth / 1e-4) * 1e-4
    expected = depth_to_hha(quantised, CAMERA, np.round(raw / 1e-4) == 0)
    for name in ("a.png", "b.png"):
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "hha" / name))[..., ::-1], expected)
    assert sorted(p.name for p in (tmp_path / "hha").iterdir()) == ["a.png", "b.png"]  # no temporary left


def test_folder_command_fails_naming_the_missing_raw_file(tmp_path, capsys):
    depth, _, _ = room()
    write_depth(tmp_path / "depth" / "a.png", depth, 1e-3)
    (tmp_path / "raw").mkdir()
    assert main([str(tmp_path / "depth"), str(tmp_path / "out"), "--raw", str(tmp_path / "raw"),
                 "--fx", "200", "--fy", "210", "--cx", "40.5", "--cy", "30.5"]) == 1
    assert str(tmp_path / "raw" / "a.png") in capsys.readouterr().err
    assert not list((tmp_path / "out").iterdir())
    with pytest.raises(FileNotFoundError, match="no .png depth images"):
        convert_folder(tmp_path / "raw", tmp_path / "out")


@pytest.mark.realdata
def test_real_depth_matches_the_matlab_hha(realdata):
    """matlab_hha.png was made by the MATLAB code with the filled depth as its own raw depth
    (Depth2HHA's main.m: RD = D), so nothing was marked missing; hha.png is the Python port's
    output with the raw depth's holes marked missing."""
    folder = realdata / "nyud" / "hha_demo_640x480"
    depth = cv2.imread(str(folder / "0.png"), cv2.IMREAD_UNCHANGED) / 10000
    raw = cv2.imread(str(folder / "0_raw.png"), cv2.IMREAD_UNCHANGED)
    matlab = cv2.imread(str(folder / "matlab_hha.png"))[..., ::-1].astype(float)
    ours = depth_to_hha(depth, nyud_camera(*depth.shape))
    assert np.abs(ours - matlab).mean(axis=(0, 1)).max() <= 2.0
    port = cv2.imread(str(folder / "hha.png"))[..., ::-1].astype(float)
    with_holes = depth_to_hha(depth, NYUD_CAMERA, raw == 0)
    assert np.abs(with_holes - port).mean(axis=(0, 1)).max() <= 2.0
