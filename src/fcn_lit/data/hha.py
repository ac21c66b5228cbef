"""HHA from depth (Gupta et al., ECCV 2014), so NYUDv2 can be prepared without MATLAB.

    python -m fcn_lit.data.hha nyud/data/depth nyud/data/hha --raw nyud/data/rawdepth

The three channels (RGB order) are horizontal disparity ``31000 / max(depth_cm, 100)``, height
above the lowest point in cm, and the angle of the surface normal with gravity plus 38 degrees.
This follows Saurabh Gupta's MATLAB code (rcnn-depth: ``saveHHA``, ``processDepthImage``,
``getPointCloudFromZ``, ``computeNormalsSquareSupport``, ``getYDir``, ``getRMatrix``), including
its 1-based pixel coordinates, MATLAB's rounding and saturation, and NaN angles read as 180
degrees. Normals are least-squares planes over 7x7 windows (21x21 for the gravity estimate) of the
points the sensor saw; ``missing`` leaves the pixels out of those fits, nothing else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

# NYUDv2 colour camera (the toolbox's camera_params.m), in MATLAB's 1-based pixel coordinates.
NYUD_CAMERA = np.array([[5.1885790117450188e02, 0.0, 3.2558244941119034e02],
                        [0.0, 5.1946961112127485e02, 2.5373616633400465e02],
                        [0.0, 0.0, 1.0]])
NYUD_SIZE = (480, 640)
# Gupta et al.'s crop, which FCN's NYUDv2 images (425x560) have: rows 45..469, columns 41..600.
NYUD_CROP = (425, 560, 44, 40)

NORMAL_RADIUS = 3  # 7x7 windows for the normals that give the angle
GRAVITY_RADIUS = 10  # 21x21 windows for the normals that give the gravity direction
GRAVITY_THRESHOLDS = ((45.0, 5), (15.0, 5))  # (degrees, iterations) of getYDir's two rounds


def nyud_camera(height: int, width: int) -> np.ndarray:
    """The NYUDv2 colour camera for a full (480x640) or Gupta-cropped (425x560) image."""
    if (height, width) == NYUD_SIZE:
        return NYUD_CAMERA.copy()
    crop_h, crop_w, top, left = NYUD_CROP
    if (height, width) == (crop_h, crop_w):
        camera = NYUD_CAMERA.copy()
        camera[0, 2] -= left
        camera[1, 2] -= top
        return camera
    raise ValueError(f"a {width}x{height} depth image is neither NYUDv2's 640x480 nor its 560x425 crop: "
                     "give the camera's intrinsics (--fx --fy --cx --cy)")


def point_cloud(depth_cm: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """HxWx3 camera coordinates (x right, y down, z forward), pixel (1, 1) at the top left."""
    h, w = depth_cm.shape
    xx, yy = np.meshgrid(np.arange(1, w + 1, dtype=np.float64), np.arange(1, h + 1, dtype=np.float64))
    x = (xx - camera[0, 2]) * depth_cm / camera[0, 0]
    y = (yy - camera[1, 2]) * depth_cm / camera[1, 1]
    return np.stack([x, y, depth_cm], axis=-1)


def box_sum(f: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2r+1)^2 window around each pixel of HxWxC `f`, zeros outside the image
    (MATLAB's filter2). Added up directly, not as running sums, so that a window of zeros sums to
    exactly 0 (a running sum leaves rounding residue there, which turns unseen windows' NaN
    normals into arbitrary ones)."""
    h, w = f.shape[:2]
    k = 2 * radius + 1
    padded = np.pad(f, ((radius, radius), (radius, radius), (0, 0)))
    rows = sum(padded[i:i + h] for i in range(k))
    return sum(rows[:, j:j + w] for j in range(k))


def surface_normals(points: np.ndarray, missing: np.ndarray, radius: int) -> np.ndarray:
    """Unit normals of the plane n.p = 1 fitted to each window's seen points, pointing away from the
    camera; NaN where a window saw too little to fix a plane.

    The plane through the window's points p solves min sum ((p/z).n - 1/z)^2, a 3x3 system whose
    six distinct entries and right-hand side are box sums, solved by the adjugate (the scale of n
    does not matter)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(missing, np.nan, points[..., 2])
        a = np.where(missing, np.nan, points[..., 0]) / z
        b = np.where(missing, np.nan, points[..., 1]) / z
        one = np.where(missing, np.nan, 1.0)
        raw = np.stack([a * a, a * b, a, b * b, b, one, a / z, b / z, 1.0 / z], axis=-1)
    sums = box_sum(np.nan_to_num(raw, nan=0.0), radius)
    xx, xy, x, yy, y, n, xz, yz, oz = np.moveaxis(sums, -1, 0)
    adj = (yy * n - y * y, -(xy * n - x * y), xy * y - x * yy, xx * n - x * x, -(xx * y - xy * x), xx * yy - xy * xy)
    normal = np.stack([adj[0] * xz + adj[1] * yz + adj[2] * oz,
                       adj[1] * xz + adj[3] * yz + adj[4] * oz,
                       adj[2] * xz + adj[4] * yz + adj[5] * oz], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    normal *= np.where(normal[..., 2:] < 0, -1.0, 1.0)  # first make z >= 0, as the MATLAB code does
    facing = np.sign(np.sum(normal * points, axis=-1, keepdims=True))
    return normal * np.where(np.isnan(facing) | (facing == 0), 1.0, facing)


def gravity_direction(normals: np.ndarray) -> np.ndarray:
    """The unit 'down' vector in camera coordinates (getYDir): starting from the image's y axis,
    alternately take the normals within the threshold of parallel (floors, ceilings) and of
    perpendicular (walls) and pick the direction most parallel to the first and perpendicular to
    the second (the smallest eigenvector of NW NW' - NF NF')."""
    nn = normals.reshape(-1, 3)
    nn = nn[~np.isnan(nn[:, 0])]
    down = np.array([0.0, 1.0, 0.0])
    for threshold, iterations in GRAVITY_THRESHOLDS:
        cos, sin = np.cos(np.radians(threshold)), np.sin(np.radians(threshold))
        for _ in range(iterations):
            sim = np.abs(nn @ down)
            floor, wall = nn[sim > cos], nn[sim < sin]
            values, vectors = np.linalg.eigh(wall.T @ wall - floor.T @ floor)
            new = vectors[:, np.argmin(values)]
            down = new * np.sign(down @ new)
    return down


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation turning unit vector a onto b about a x b (getRMatrix; identity below 0.1 degree)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    angle = np.degrees(np.arccos(min(1.0, abs(float(a @ b)))))
    if abs(angle) <= 0.1:
        return np.eye(3)
    axis = np.cross(a, b)
    axis /= np.linalg.norm(axis)
    s = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    phi = np.radians(angle)
    return np.eye(3) + np.sin(phi) * s + (1 - np.cos(phi)) * (s @ s)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """MATLAB's uint8(): round half away from zero, saturate to 0..255, NaN to 0."""
    rounded = np.sign(values) * np.floor(np.abs(values) + 0.5)
    return np.clip(np.nan_to_num(rounded, nan=0.0), 0, 255).astype(np.uint8)


def depth_to_hha(depth_m: np.ndarray, camera_matrix: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """HHA (uint8, HxWx3, RGB: disparity, height, angle) of a depth image in metres.

    ``camera_matrix`` is the 3x3 intrinsics in 1-based pixel coordinates (MATLAB's, as NYUDv2's
    calibration is). ``missing`` (HxW bool) marks the pixels the raw sensor did not see, left out
    of the normal fits; ``None`` marks the pixels whose depth is 0 or not finite. Filled-in depth
    (NYUDv2's) still gives the disparity and height of the missing pixels.
    """
    depth_m = np.asarray(depth_m, dtype=np.float64)
    camera = np.asarray(camera_matrix, dtype=np.float64)
    if depth_m.ndim != 2:
        raise ValueError(f"depth_m has shape {depth_m.shape}; give one HxW depth image in metres")
    if camera.shape != (3, 3):
        raise ValueError(f"camera_matrix has shape {camera.shape}; give the 3x3 intrinsics [[fx,0,cx],[0,fy,cy],[0,0,1]]")
    if missing is None:
        missing = ~np.isfinite(depth_m) | (depth_m <= 0)
    missing = np.asarray(missing, dtype=bool)
    if missing.shape != depth_m.shape:
        raise ValueError(f"missing has shape {missing.shape}, the depth {depth_m.shape}; give one flag per pixel")
    if missing.all():
        raise ValueError("every pixel is missing: there is no depth to compute HHA from")
    points = point_cloud(depth_m * 100, camera)  # centimetres, as the MATLAB code
    normals = surface_normals(points, missing, NORMAL_RADIUS)
    down = gravity_direction(surface_normals(points, missing, GRAVITY_RADIUS))
    rotation = rotation_between(np.array([0.0, 1.0, 0.0]), down)
    height = -(points @ rotation)[..., 1]  # minus the y of R' p: height above the camera
    lowest = np.nanmin(height)
    height -= lowest if lowest <= -90 else -130  # the MATLAB code's floor guess for short scenes
    with np.errstate(invalid="ignore"):
        cos = np.clip(np.sum(normals * down, axis=-1), -1, 1)
    angle = np.degrees(np.arccos(np.nan_to_num(cos, nan=-1.0)))  # MATLAB's max(-1, NaN) is -1: 180 degrees
    disparity = 31000 / np.maximum(points[..., 2], 100)
    return to_uint8(np.stack([disparity, height, angle + 128 - 90], axis=-1))


def read_depth_png(path: Path, scale: float) -> np.ndarray:
    """A single-channel 16-bit depth PNG times `scale` (metres per unit)."""
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise ValueError(f"{path}: cannot read the depth image; is it a PNG?")
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise ValueError(f"{path}: a {depth.dtype} image of shape {depth.shape}; give single-channel 16-bit depth PNGs")
    return depth.astype(np.float64) * scale


def convert_folder(depth_dir: Path, out_dir: Path, raw_dir: Path | None = None, scale: float = 1e-3,
                   camera: np.ndarray | None = None, overwrite: bool = False) -> list[Path]:
    """HHA PNGs in `out_dir` for every PNG of `depth_dir`, named alike; missing pixels from the
    same-named PNG in `raw_dir` (0 = unseen) when given. Existing outputs are kept unless
    `overwrite`; each file is written whole or not at all."""
    depth_dir, out_dir = Path(depth_dir), Path(out_dir)
    paths = sorted(depth_dir.glob("*.png"))
    if not paths:
        raise FileNotFoundError(f"{depth_dir} holds no .png depth images; point it at the depth folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        dest = out_dir / path.name
        if dest.exists() and not overwrite:
            continue
        depth = read_depth_png(path, scale)
        missing = None
        if raw_dir is not None:
            raw_path = Path(raw_dir) / path.name
            if not raw_path.is_file():
                raise FileNotFoundError(f"{raw_path} does not exist: every depth image needs its raw depth in {raw_dir}")
            missing = read_depth_png(raw_path, 1.0) == 0
            if missing.shape != depth.shape:
                raise ValueError(f"{raw_path}: raw depth {missing.shape} and depth {depth.shape} differ in size")
        hha = depth_to_hha(depth, nyud_camera(*depth.shape) if camera is None else camera, missing)
        tmp = dest.with_name(f".{dest.name}.tmp.png")
        if not cv2.imwrite(str(tmp), hha[..., ::-1]):
            raise OSError(f"cannot write {tmp}; is {out_dir} writable?")
        os.replace(tmp, dest)
        written.append(dest)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert a folder of 16-bit depth PNGs to HHA PNGs.")
    parser.add_argument("depth_dir", type=Path, help="folder of uint16 depth PNGs (filled-in depth)")
    parser.add_argument("out_dir", type=Path, help="where the HHA PNGs go, named as their depth images")
    parser.add_argument("--raw", type=Path, help="folder of the raw depth PNGs (0 = unseen), named alike")
    parser.add_argument("--scale", type=float, default=1e-3,
                        help="metres per depth unit (default 0.001: millimetres, FCN's NYUDv2; 0.0001 for 0.1 mm)")
    parser.add_argument("--fx", type=float)
    parser.add_argument("--fy", type=float)
    parser.add_argument("--cx", type=float, help="1-based, as MATLAB calibrations give it")
    parser.add_argument("--cy", type=float, help="1-based, as MATLAB calibrations give it")
    parser.add_argument("--overwrite", action="store_true", help="recompute existing HHA PNGs")
    args = parser.parse_args(argv)
    intrinsics = (args.fx, args.fy, args.cx, args.cy)
    if any(v is None for v in intrinsics) and any(v is not None for v in intrinsics):
        parser.error("give all of --fx --fy --cx --cy, or none for the NYUDv2 colour camera")
    camera = None if args.fx is None else np.array([[args.fx, 0, args.cx], [0, args.fy, args.cy], [0, 0, 1.0]])
    try:
        written = convert_folder(args.depth_dir, args.out_dir, args.raw, args.scale, camera, args.overwrite)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} HHA images to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
