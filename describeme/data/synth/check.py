"""Label-invariant checker for generated image datasets and synthetic videos.

Each check returns a list of violations, one string per problem, naming the file. An empty
list means the folder satisfies every invariant of :mod:`describeme.data.layout`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import yaml

from describeme.data import layout
from describeme.data.sample import boxes_from_humans
from describeme.labels import (
    COLOR_ID,
    NUM_COLORS,
    NUM_PARTS,
    NUM_PATTERNS,
    NUM_SIZES,
    PART_HAS_COLOR,
    PART_HAS_PATTERN,
    PART_HAS_SIZE,
    PART_ID,
    PATTERN_ID,
    SIZE_ID,
)  # fmt: skip

_HAS = {"color": PART_HAS_COLOR, "size": PART_HAS_SIZE, "pattern": PART_HAS_PATTERN}
_LIMITS = {"color": NUM_COLORS, "size": NUM_SIZES, "pattern": NUM_PATTERNS}
_NAMES = {"color": COLOR_ID, "size": SIZE_ID, "pattern": PATTERN_ID}
MAX_REPORTED = 200  # stop listing after this many; the first ones say what is wrong


def check_folder(root: str | Path, limit: int | None = None) -> list[str]:
    """Checks an image dataset or a synthetic video folder (by its dataset.yaml)."""
    root = Path(root)
    meta_path = root / layout.DATASET_YAML
    if not meta_path.is_file():
        return [f"{meta_path}: missing (not a describeme dataset folder)"]
    meta = yaml.safe_load(meta_path.read_text()) or {}
    fmt = meta.get("format")
    if fmt == layout.FORMAT_IMAGES:
        return check_image_dataset(root, limit)
    if fmt == layout.FORMAT_VIDEO:
        return check_video(root, meta)
    return [f"{meta_path}: unknown format {fmt!r}"]


def _read(path: Path, dtype: type) -> np.ndarray | None:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != dtype or array.ndim != 2:
        return None
    return array


def check_maps(
    name: str,
    parts: np.ndarray,
    humans: np.ndarray,
    instance: np.ndarray | None,
    chars: dict[str, np.ndarray],
) -> list[str]:
    """Invariants between the label maps of one image (``name`` prefixes each violation)."""
    bad: list[str] = []
    if parts.max(initial=0) >= NUM_PARTS:
        bad.append(f"{name}: part id {int(parts.max())} out of range")
    if ((parts == 0) != (humans == 0)).any():
        bad.append(
            f"{name}: {int(((parts == 0) != (humans == 0)).sum())} pixels where exactly one "
            "of Category_ids/Human_ids is background"
        )
    if instance is not None and not np.array_equal(instance, layout.instance_ids(humans, parts)):
        bad.append(f"{name}: Instance_ids differ from 22*(human-1)+class")
    inst = humans.astype(np.int64) * NUM_PARTS + parts
    for kind, values in chars.items():
        if values.max(initial=0) >= _LIMITS[kind]:
            bad.append(f"{name}: {kind} id {int(values.max())} out of range")
        has = np.zeros(256, dtype=bool)
        has[list(_HAS[kind])] = True
        should = has[parts] & (humans > 0)
        if (values[~should] != 0).any():
            bad.append(
                f"{name}: {kind} set on {int((values[~should] != 0).sum())} pixels that are "
                "background or a part without that characteristic"
            )
        if (values[should] == 0).any():
            bad.append(
                f"{name}: {kind} missing on {int((values[should] == 0).sum())} pixels of "
                "characterized parts"
            )
        pairs = np.unique(inst[should] * 256 + values[should])
        if np.unique(pairs // 256).size != pairs.size:
            bad.append(f"{name}: {kind} not constant within a (person, part) instance")
    return bad


def check_description(
    name: str, desc: dict, humans: np.ndarray, chars: dict[str, np.ndarray], parts: np.ndarray
) -> list[str]:
    """Descriptions JSON against the maps: people, boxes, keypoints, part classes."""
    bad: list[str] = []
    persons = desc.get("persons", [])
    n = int(humans.max(initial=0))
    if len(persons) != n:
        return [f"{name}: {len(persons)} described persons, Human_ids has {n}"]
    boxes = boxes_from_humans(humans, n)
    height, width = humans.shape
    for k, person in enumerate(persons):
        hid = k + 1
        if person.get("human_id") != hid:
            bad.append(f"{name}: person {k} has human_id {person.get('human_id')}, expected {hid}")
        if not np.allclose(person.get("box", []), boxes[k]):
            bad.append(
                f"{name}: person {hid} box {person.get('box')} != mask box {boxes[k].tolist()}"
            )
        kps = np.asarray(person.get("keypoints", []), dtype=np.float64)
        if kps.shape != (17, 3):
            bad.append(f"{name}: person {hid} keypoints shape {kps.shape}, expected (17, 3)")
            continue
        for j, (x, y, v) in enumerate(kps):
            xi, yi = int(x), int(y)
            inside = 0 <= xi < width and 0 <= yi < height
            if v not in (0, 1, 2) or (v > 0 and not inside):
                bad.append(f"{name}: person {hid} keypoint {j} ({x}, {y}, v={v}) invalid")
            elif v == 2 and humans[yi, xi] != hid:
                bad.append(
                    f"{name}: person {hid} keypoint {j} marked visible off the person's mask"
                )
        for part_name, info in person.get("parts", {}).items():
            part = PART_ID.get(part_name)
            if part is None:
                bad.append(f"{name}: person {hid} unknown part {part_name!r}")
                continue
            where = (humans == hid) & (parts == part)
            for kind, values in chars.items():
                expected = _NAMES[kind].get(info.get(kind, "none"), -1)
                if where.any() and (values[where] != expected).any():
                    bad.append(f"{name}: person {hid} {part_name} {kind} differs from description")
    return bad


def check_image_dataset(root: Path, limit: int | None = None) -> list[str]:
    """Checks every image of a dataset folder (or the first ``limit``)."""
    bad: list[str] = []
    stems = sorted(p.stem for p in (root / layout.IMAGES).glob("*.jpg"))[:limit]
    if not stems:
        return [f"{root / layout.IMAGES}: no images"]
    coco = _load_coco(root, bad)
    for stem in stems:
        bad += _check_image(root, stem, coco)
        if len(bad) > MAX_REPORTED:
            break
    return bad


def _check_image(root: Path, stem: str, coco: dict | None) -> list[str]:
    image = cv2.imread(str(root / layout.IMAGES / f"{stem}.jpg"))
    parts = _read(root / layout.CATEGORY_IDS / f"{stem}.png", np.uint8)
    humans = _read(root / layout.HUMAN_IDS / f"{stem}.png", np.uint8)
    instance = _read(root / layout.INSTANCE_IDS / f"{stem}.png", np.uint16)
    chars = {
        kind: _read(root / folder / f"{stem}.png", np.uint8)
        for kind, folder in layout.CHARACTERISTIC_DIRS.items()
    }
    maps = {"Category_ids": parts, "Human_ids": humans, "Instance_ids": instance, **chars}
    missing = [k for k, v in maps.items() if v is None]
    if image is None or missing:
        return [f"{root}/{stem}: unreadable or wrong dtype: {missing or ['Images']}"]
    assert parts is not None and humans is not None and instance is not None
    chars_read = {k: v for k, v in chars.items() if v is not None}
    shapes = {k: v.shape for k, v in maps.items() if v is not None and v.shape != image.shape[:2]}
    if shapes:
        return [f"{root}/{stem}: map shapes {shapes} differ from image {image.shape[:2]}"]
    name = f"{root / layout.CATEGORY_IDS / stem}.png"
    bad = check_maps(name, parts, humans, instance, chars_read)
    desc_path = root / layout.DESCRIPTIONS / f"{stem}.json"
    if not desc_path.is_file():
        return bad + [f"{desc_path}: missing"]
    bad += check_description(
        str(desc_path), json.loads(desc_path.read_text()), humans, chars_read, parts
    )
    if coco is not None:
        bad += _check_coco(root, stem, humans, coco)
    return bad


def _load_coco(root: Path, bad: list[str]) -> dict | None:
    path = root / layout.COCO_KEYPOINTS
    if not path.is_file():
        bad.append(f"{path}: missing")
        return None
    data = json.loads(path.read_text())
    by_file = {img["file_name"].rsplit(".", 1)[0]: img["id"] for img in data["images"]}
    anns: dict[int, list] = {}
    for ann in data["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    return {"by_file": by_file, "anns": anns}


def _check_coco(root: Path, stem: str, humans: np.ndarray, coco: dict) -> list[str]:
    from pycocotools import mask as mask_utils

    name = str(root / layout.COCO_KEYPOINTS)
    if stem not in coco["by_file"]:
        return [f"{name}: image {stem} not listed"]
    anns = coco["anns"].get(coco["by_file"][stem], [])
    if len(anns) != int(humans.max(initial=0)):
        return [f"{name}: image {stem} has {len(anns)} annotations, {int(humans.max())} persons"]
    bad = []
    for k, ann in enumerate(anns):
        rle = mask_utils.frPyObjects(ann["segmentation"], *ann["segmentation"]["size"])
        with warnings.catch_warnings():  # pycocotools' NumPy 2 copy-keyword deprecation
            warnings.simplefilter("ignore", DeprecationWarning)
            decoded = mask_utils.decode(rle).astype(bool)
        if not np.array_equal(decoded, humans == k + 1):
            bad.append(f"{name}: image {stem} annotation {k} segmentation != Human_ids == {k + 1}")
    return bad


def check_video(root: Path, meta: dict) -> list[str]:
    """Checks a synthetic video folder: frame count, MOT rows, tracks.json."""
    bad: list[str] = []
    video, gt_path, tracks_path = (
        root / layout.VIDEO_FILE,
        root / layout.MOT_GT,
        root / layout.TRACKS_JSON,
    )
    for path in (video, gt_path, tracks_path):
        if not path.is_file():
            bad.append(f"{path}: missing")
    if bad:
        return bad
    expected = int(round(float(meta["fps"]) * float(meta["seconds"])))
    frames = count_video_frames(video)
    if frames != expected:
        bad.append(f"{video}: {frames} frames, expected fps*seconds = {expected}")
    width, height = meta["size"]
    bad += check_mot(gt_path, frames, width, height)
    bad += check_tracks(tracks_path, gt_path, frames)
    return bad


def count_video_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def load_mot(path: Path) -> np.ndarray:
    """(R, 9) float64 rows of a MOT gt.txt (empty file -> (0, 9))."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    return rows.reshape(-1, 9) if rows.size else np.zeros((0, 9))


def check_mot(path: Path, frames: int, width: int, height: int) -> list[str]:
    """MOT rows: frames in [1, frames], one row per (frame, id), boxes in the image."""
    rows = load_mot(path)
    bad = []
    if rows.shape[1] != 9:
        return [f"{path}: rows have {rows.shape[1]} columns, expected 9"]
    f, ids = rows[:, 0].astype(int), rows[:, 1].astype(int)
    if ((f < 1) | (f > frames)).any():
        bad.append(f"{path}: frame numbers outside [1, {frames}]")
    if (ids < 1).any():
        bad.append(f"{path}: ids must be positive")
    if np.unique(f * 100_000 + ids).size != len(rows):
        bad.append(f"{path}: more than one row for a (frame, id)")
    x, y, w, h, vis = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], rows[:, 8]
    if ((w <= 0) | (h <= 0) | (x < 0) | (y < 0) | (x + w > width) | (y + h > height)).any():
        bad.append(f"{path}: boxes empty or outside the {width}x{height} image")
    if ((vis <= 0) | (vis > 1)).any():
        bad.append(f"{path}: visibility outside (0, 1]")
    return bad


def check_tracks(path: Path, gt_path: Path, frames: int) -> list[str]:
    """tracks.json against gt.txt: same ids, rows inside each track's span, segments tile it."""
    data = json.loads(path.read_text())
    rows = load_mot(gt_path)
    tracks = {t["id"]: t for t in data.get("tracks", [])}
    bad = []
    gt_ids = set(rows[:, 1].astype(int).tolist())
    if gt_ids != set(tracks):
        bad.append(f"{path}: track ids {sorted(tracks)} differ from gt ids {sorted(gt_ids)}")
    for tid, track in tracks.items():
        f0, f1 = track["first_frame"], track["last_frame"]
        mine = rows[rows[:, 1] == tid, 0]
        if mine.size and (mine.min() < f0 or mine.max() > f1):
            bad.append(f"{path}: gt rows of track {tid} outside [{f0}, {f1}]")
        if not 1 <= f0 <= f1 <= frames:
            bad.append(f"{path}: track {tid} span [{f0}, {f1}] outside [1, {frames}]")
        expect = f0
        for seg in track.get("segments", []):
            if seg["from_frame"] != expect or seg["to_frame"] < seg["from_frame"]:
                bad.append(f"{path}: track {tid} segments do not tile [{f0}, {f1}]")
                break
            expect = seg["to_frame"] + 1
        else:
            if expect != f1 + 1:
                bad.append(f"{path}: track {tid} segments end at {expect - 1}, track at {f1}")
    return bad


def check_sample(sample, name: str = "") -> list[str]:
    """Checks an in-memory :class:`~describeme.data.sample.Sample` (maps, boxes, keypoints)."""
    name = name or sample.image_id or "<sample>"
    if sample.color is None or sample.size is None or sample.pattern is None:
        return [f"{name}: sample has no characteristic maps"]
    chars = {"color": sample.color, "size": sample.size, "pattern": sample.pattern}
    bad = check_maps(name, sample.parts, sample.humans, None, chars)
    if not np.array_equal(sample.boxes, boxes_from_humans(sample.humans, sample.num_persons)):
        bad.append(f"{name}: boxes differ from the human map")
    persons = []
    for k, person in enumerate(sample.descriptions or []):
        entry = dict(person)
        entry["keypoints"] = sample.keypoints[k].tolist() if sample.keypoints is not None else []
        persons.append(entry)
    desc = {"persons": persons}
    return bad + check_description(name, desc, sample.humans, chars, sample.parts)
