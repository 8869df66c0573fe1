"""On-disk layout of image datasets (CIHP/CCIHP style) and synthetic videos.

Image dataset root::

    dataset.yaml                 format, version, class set, instance-id rule, generator args
    Images/<id>.jpg              BGR photo (any format OpenCV reads)
    Category_ids/<id>.png        uint8 part class per pixel (CCIHP ids; CIHP ids for CIHP)
    Human_ids/<id>.png           uint8 person index per pixel, 0 = background, 1..N
    Instance_ids/<id>.png        part-instance id per pixel (rule below), 0 = background
    Color_ids/<id>.png           uint8 color class per pixel, 0 = none      (CCIHP only)
    Size_ids/<id>.png            uint8 size class per pixel, 0 = none       (CCIHP only)
    Pattern_ids/<id>.png         uint8 pattern class per pixel, 0 = none    (CCIHP only)
    Descriptions/<id>.json       per-person ground truth (synthetic only, see below)
    annotations/person_keypoints.json   COCO keypoints + segmentation (synthetic; optional)
    <split>_id.txt               optional list of ids for a split (CIHP's train_id.txt etc.)

Part-instance ids: CIHP writes ``20*(human-1)+class`` in 8-bit PNGs. With CCIHP's 22 classes
that rule collides (class 20 of person h == class 0 of person h+1), so our datasets write
``22*(human-1)+class`` in **16-bit** PNGs (unique for any class in 1..21 and up to 2978
people) and say so in ``dataset.yaml`` (``instance_id_rule: 22h+c``). A dataset without
``dataset.yaml`` is read as CIHP (20 classes, ``20h+c``). Readers never need the instance
map to recover part instances: an instance is a (human, class) pair.

Descriptions/<id>.json::

    {"image_id": "...", "height": H, "width": W,
     "persons": [{"human_id": 1, "box": [x0, y0, x1, y1], "keypoints": [[x, y, v] * 17],
                  "view": "front|back|left|right", "pose": "walk|stand|...",
                  "parts": {"upper-clothes": {"color": "red", "size": "short",
                                               "pattern": "geometrical"}, ...}}]}

Keypoint visibility follows COCO: 0 not labelled (outside the image), 1 labelled but
occluded, 2 visible (then the point lies on the person's visible mask).

Synthetic video root::

    dataset.yaml                 format: describeme-video, fps, size, seconds, seed
    video.mp4                    H.264 (yuv420p) clip
    gt/gt.txt                    MOT ground truth (below)
    tracks.json                  per-track ground-truth descriptions over time

``gt.txt`` rows (MOT16/17): ``frame, id, x, y, w, h, conf, class, visibility`` with 1-based
frame numbers, box in pixels (top-left + size), conf 1, class 1 (pedestrian) and visibility
in [0, 1] (visible fraction of the person). ``tracks.json``::

    {"fps": F, "tracks": [{"id": 1, "first_frame": f0, "last_frame": f1,
                           "segments": [{"from_frame": f0, "to_frame": f, "parts": {...}}]}]}

A person who changes appearance (takes a coat off) has two segments.
"""

from __future__ import annotations

IMAGES = "Images"
CATEGORY_IDS = "Category_ids"
HUMAN_IDS = "Human_ids"
INSTANCE_IDS = "Instance_ids"
COLOR_IDS = "Color_ids"
SIZE_IDS = "Size_ids"
PATTERN_IDS = "Pattern_ids"
DESCRIPTIONS = "Descriptions"
COCO_KEYPOINTS = "annotations/person_keypoints.json"
DATASET_YAML = "dataset.yaml"

CHARACTERISTIC_DIRS = {"color": COLOR_IDS, "size": SIZE_IDS, "pattern": PATTERN_IDS}

FORMAT_IMAGES = "describeme-images"
FORMAT_VIDEO = "describeme-video"
LAYOUT_VERSION = 1

# Part-instance id rules by name, as written in dataset.yaml.
RULE_CCIHP = "22h+c"
RULE_CIHP = "20h+c"

VIDEO_FILE = "video.mp4"
MOT_GT = "gt/gt.txt"
TRACKS_JSON = "tracks.json"


def instance_ids(humans, parts, rule: str = RULE_CCIHP):
    """Computes a part-instance id map from (H, W) human and part maps.

    Args:
        humans: (H, W) integer person index, 0 = background.
        parts: (H, W) integer part class, 0 = background.
        rule: ``22h+c`` (ours, 16-bit) or ``20h+c`` (CIHP, 8-bit).

    Returns:
        (H, W) uint16 ids, 0 where either map is 0.
    """
    import numpy as np

    stride = {RULE_CCIHP: 22, RULE_CIHP: 20}.get(rule)
    if stride is None:
        raise ValueError(
            f"unknown instance_id_rule {rule!r}; expected {RULE_CCIHP!r} or {RULE_CIHP!r}"
        )
    humans = np.asarray(humans)
    parts = np.asarray(parts)
    if humans.size and int(humans.max()) * stride + stride > np.iinfo(np.uint16).max:
        raise ValueError(f"{int(humans.max())} people do not fit 16-bit part-instance ids")
    # uint16 arithmetic (exact within the check above) is ~5x faster than int64 on big maps;
    # background pixels wrap around and are zeroed by the mask.
    ids = humans.astype(np.uint16) * np.uint16(stride) + parts.astype(np.uint16)
    ids -= np.uint16(stride)
    ids[(humans == 0) | (parts == 0)] = 0
    return ids
