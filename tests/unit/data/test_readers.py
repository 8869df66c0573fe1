"""CIHP / CCIHP / synthetic layout readers on tiny fixture folders written here."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from describeme import labels
from describeme.data import layout
from describeme.data.readers import (
    DatasetMapping,
    LabelMaps,
    ParsingDataset,
    default_mapping,
    load_mapping,
    open_dataset,
    read_label_maps,
    sample_violations,
)
from describeme.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[3]
H, W = 12, 16


def _person_maps(cihp: bool) -> tuple[np.ndarray, np.ndarray]:
    """Person 1 (left): hair, dress/top, left-arm, pants; person 2 (right): face, pants/bag."""
    parts = np.zeros((H, W), np.uint8)
    humans = np.zeros((H, W), np.uint8)
    humans[2:10, 1:6] = 1
    parts[2:4, 1:6] = labels.HAIR
    parts[4:8, 1:5] = 6 if cihp else labels.UPPER_CLOTHES  # CIHP 6 = dress
    parts[4:10, 5:6] = labels.LEFT_ARM
    parts[8:10, 1:5] = labels.PANTS
    humans[1:11, 9:14] = 2
    parts[1:4, 9:14] = labels.FACE
    parts[4:11, 9:14] = labels.PANTS if cihp else labels.BAG
    return parts, humans


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def make_cihp(root: Path, ids: tuple[str, ...] = ("0001", "0002")) -> Path:
    parts, humans = _person_maps(cihp=True)
    for i, image_id in enumerate(ids):
        _write_png(root / "Images" / f"{image_id}.jpg", _image(i))
        _write_png(root / "Category_ids" / f"{image_id}.png", parts)
        _write_png(root / "Human_ids" / f"{image_id}.png", humans)
        inst = layout.instance_ids(humans, parts, layout.RULE_CIHP).astype(np.uint8)
        _write_png(root / "Instance_ids" / f"{image_id}.png", inst)
    return root


def _keypoints(human: int) -> list[list[float]]:
    return [[float(human * 10 + k), float(k), 2.0] for k in range(labels.NUM_KEYPOINTS)]


def make_synthetic(root: Path, with_description_keypoints: bool = True) -> Path:
    parts, humans = _person_maps(cihp=False)
    humans16 = humans.astype(np.uint16) * 13  # ids 13 and 26 -> 16-bit instance ids > 255
    humans16[humans == 1] = 1
    humans16[humans == 2] = 12
    color = np.where(parts == labels.BAG, labels.COLOR_ID["red"], 0).astype(np.uint8)
    color[parts == labels.UPPER_CLOTHES] = labels.COLOR_ID["blue"]
    size = np.where(parts == labels.UPPER_CLOTHES, 1, 0).astype(np.uint8)
    pattern = np.where(parts == labels.BAG, 2, 0).astype(np.uint8)
    (root / "Descriptions").mkdir(parents=True)
    for image_id in ("a", "b"):
        _write_png(root / "Images" / f"{image_id}.png", _image(3))
        _write_png(root / "Category_ids" / f"{image_id}.png", parts)
        _write_png(root / "Human_ids" / f"{image_id}.png", humans16)
        _write_png(root / "Instance_ids" / f"{image_id}.png", layout.instance_ids(humans16, parts))
        _write_png(root / "Color_ids" / f"{image_id}.png", color)
        _write_png(root / "Size_ids" / f"{image_id}.png", size)
        _write_png(root / "Pattern_ids" / f"{image_id}.png", pattern)
        persons = [{"human_id": h, "parts": {}} for h in (12, 1)]  # unsorted on purpose
        if with_description_keypoints:
            for person in persons:
                person["keypoints"] = _keypoints(person["human_id"])
        (root / "Descriptions" / f"{image_id}.json").write_text(
            json.dumps({"image_id": image_id, "height": H, "width": W, "persons": persons})
        )
    info = {"format": layout.FORMAT_IMAGES, "version": 1, "instance_id_rule": layout.RULE_CCIHP}
    (root / "dataset.yaml").write_text(yaml.safe_dump(info))
    return root


# ---------------------------------------------------------------------------------------------
def test_cihp_reader_maps_classes_and_builds_boxes(tmp_path: Path) -> None:
    ds = open_dataset(make_cihp(tmp_path))
    assert isinstance(ds, ParsingDataset) and ds.kind == "cihp" and len(ds) == 2
    assert ds.ids == ["0001", "0002"] and ds.info["instance_id_rule"] == layout.RULE_CIHP
    sample = ds[0]
    parts, humans = _person_maps(cihp=True)
    expected = labels.cihp_to_ccihp_lut()[parts]
    np.testing.assert_array_equal(sample.parts, expected)
    assert sample.parts[5, 2] == labels.UPPER_CLOTHES  # CIHP dress -> upper-clothes
    assert sample.humans.dtype == np.uint16 and sample.parts.dtype == np.uint8
    np.testing.assert_array_equal(sample.boxes, [[1, 2, 6, 10], [9, 1, 14, 11]])
    assert sample.color is None and sample.keypoints is None and sample.descriptions is None
    assert sample.image.shape == (H, W, 3)
    assert sample_violations(sample, DatasetMapping(**ds.info["mapping"])) == []
    assert ds.sample_by_id("0002").image_id == "0002"
    assert ds[-1].image_id == "0002"


def test_split_file_selects_ids_in_file_order(tmp_path: Path) -> None:
    root = make_cihp(tmp_path, ids=("x1", "x2", "x3"))
    (root / "val_id.txt").write_text("x3\n\nx1\n")
    assert open_dataset(root, split="val").ids == ["x3", "x1"]


@pytest.mark.parametrize(
    "content, message",
    [(None, "val_id.txt"), ("x1\nnope\n", "nope")],
)
def test_split_errors_name_the_file_and_id(
    tmp_path: Path, content: str | None, message: str
) -> None:
    root = make_cihp(tmp_path, ids=("x1",))
    if content is not None:
        (root / "val_id.txt").write_text(content)
    with pytest.raises(DataError, match=message):
        open_dataset(root, split="val")


def test_synthetic_reader_reads_characteristics_keypoints_descriptions(tmp_path: Path) -> None:
    ds = open_dataset(make_synthetic(tmp_path))
    assert ds.kind == "synthetic" and ds.info["format"] == layout.FORMAT_IMAGES
    sample = ds.sample_by_id("a")
    assert sample.has_characteristics and sample.num_persons == 12
    assert sample.color[5, 2] == labels.COLOR_ID["blue"] and sample.pattern[6, 10] == 2
    assert [d["human_id"] for d in sample.descriptions] == [1, 12]
    assert sample.keypoints.shape == (12, 17, 3)
    np.testing.assert_array_equal(sample.keypoints[11], _keypoints(12))
    np.testing.assert_array_equal(sample.keypoints[0], _keypoints(1))
    assert not sample.keypoints[1:11].any()  # persons 2..11 do not exist -> zeros
    assert int(sample.extra["instances"].max()) == 22 * 11 + labels.BAG  # 16-bit id survives
    assert sample_violations(sample, DatasetMapping(**ds.info["mapping"])) == [
        f"{sample.source}: human ids [1, 12] are not contiguous 1..2"
    ]


def test_synthetic_keypoints_fall_back_to_coco_json_by_human_id(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path, with_description_keypoints=False)
    coco = {
        "images": [{"id": 7, "file_name": "a.png", "height": H, "width": W}],
        "annotations": [
            {"id": 1, "image_id": 7, "human_id": 12, "keypoints": sum(_keypoints(12), [])},
            {"id": 2, "image_id": 7, "human_id": 1, "keypoints": sum(_keypoints(1), [])},
        ],
    }
    (root / "annotations").mkdir()
    (root / layout.COCO_KEYPOINTS).write_text(json.dumps(coco))
    ds = open_dataset(root)
    np.testing.assert_array_equal(ds.sample_by_id("a").keypoints[11], _keypoints(12))
    assert ds.sample_by_id("b").keypoints is None  # image b has no annotation


def test_ccihp_mapping_yaml_remaps_ids_and_auto_detects(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path)
    (root / "dataset.yaml").unlink()
    assert open_dataset(root).kind == "ccihp"  # Color_ids present, no dataset.yaml
    table = yaml.safe_load((REPO / "configs/datasets/ccihp.yaml").read_text())
    table["color"][10], table["color"][5] = 5, 10  # the release swaps blue and red, say
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(table))
    sample = open_dataset(root, kind="ccihp", mapping=tmp_path / "mine.yaml")[0]
    assert sample.color[5, 2] == labels.COLOR_ID["red"]
    assert sample.color[6, 10] == labels.COLOR_ID["blue"]


def test_config_files_equal_builtin_defaults() -> None:
    for kind in ("cihp", "ccihp"):
        assert load_mapping(REPO / "configs" / "datasets" / f"{kind}.yaml") == default_mapping(kind)


def test_read_label_maps_needs_no_images(tmp_path: Path) -> None:
    root = make_cihp(tmp_path / "gt")
    ds = open_dataset(root)
    make_cihp(tmp_path / "pred")
    for folder in (tmp_path / "pred" / "Images").iterdir():
        folder.unlink()
    (tmp_path / "pred" / "Images").rmdir()
    maps = read_label_maps(tmp_path / "pred", "0001", info=ds.info)
    assert isinstance(maps, LabelMaps)
    np.testing.assert_array_equal(maps.parts, ds[0].parts)
    assert maps.instances is not None and maps.instances.dtype == np.uint16 and maps.color is None
    # Predictions already in our ids: kind synthetic reads parts without the CIHP table.
    ours = read_label_maps(tmp_path / "pred", "0001", info={"kind": "synthetic"})
    assert ours.parts[5, 2] == 6


def test_palette_png_is_read_as_indices(tmp_path: Path) -> None:
    root = make_cihp(tmp_path)
    parts, _ = _person_maps(cihp=True)
    image = Image.fromarray(parts, mode="P")
    image.putpalette(labels.PART_PALETTE.ravel().tolist())
    image.save(root / "Category_ids" / "0001.png")
    np.testing.assert_array_equal(open_dataset(root)[0].parts, labels.cihp_to_ccihp_lut()[parts])


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", ["Images", "Category_ids", "Human_ids"])
def test_missing_folder_names_folder_and_root(tmp_path: Path, folder: str) -> None:
    root = make_cihp(tmp_path)
    for path in (root / folder).iterdir():
        path.unlink()
    (root / folder).rmdir()
    with pytest.raises(DataError, match=f"'{folder}' under {root}"):
        open_dataset(root)


def test_missing_characteristic_folder_for_ccihp(tmp_path: Path) -> None:
    root = make_cihp(tmp_path)
    with pytest.raises(DataError, match="'Color_ids' under"):
        open_dataset(root, kind="ccihp")


def _corrupt(path: Path) -> None:
    path.write_bytes(b"not an image at all")


def _rgb_labels(path: Path) -> None:
    _write_png(path, np.zeros((H, W, 3), np.uint8) + 40)


def _wrong_shape(path: Path) -> None:
    _write_png(path, np.zeros((H + 1, W), np.uint8))


@pytest.mark.parametrize(
    "relpath, damage, message",
    [
        ("Images/0001.jpg", _corrupt, r"Images/0001.jpg: cannot decode image"),
        ("Images/0001.jpg", Path.unlink, r"Images/0001.jpg: image file not found"),
        ("Category_ids/0001.png", _corrupt, r"Category_ids/0001.png: cannot decode part-label"),
        ("Category_ids/0001.png", Path.unlink, r"Category_ids/0001.png: part-label file not found"),
        (
            "Human_ids/0001.png",
            _wrong_shape,
            r"Human_ids/0001.png has shape \(13, 16\).*Images/0001.jpg",
        ),
        (
            "Category_ids/0001.png",
            _wrong_shape,
            r"Category_ids/0001.png has shape.*Images/0001.jpg",
        ),
        ("Human_ids/0001.png", _rgb_labels, r"Human_ids/0001.png: human-id map must be single"),
        ("Instance_ids/0001.png", _wrong_shape, r"Instance_ids/0001.png has shape"),
    ],
)
def test_bad_files_raise_data_error_naming_the_file(
    tmp_path: Path, relpath, damage, message
) -> None:
    root = make_cihp(tmp_path)
    ds = open_dataset(root)
    damage(root / relpath)  # after opening: a file that breaks while training
    with pytest.raises(DataError, match=message):
        ds.sample_by_id("0001")
    ds.sample_by_id("0002")  # the other image still reads


@pytest.mark.parametrize("bad_id", [20, 21, 200])
def test_cihp_part_id_out_of_range_names_file_and_id(tmp_path: Path, bad_id: int) -> None:
    root = make_cihp(tmp_path)
    parts, _ = _person_maps(cihp=True)
    parts[0, 0] = bad_id
    _write_png(root / "Category_ids" / "0001.png", parts)
    with pytest.raises(DataError, match=rf"Category_ids/0001.png: part id\(s\) \[{bad_id}\]"):
        open_dataset(root)[0]


@pytest.mark.parametrize("name, folder, bad_id", [
    ("color", "Color_ids", labels.NUM_COLORS), ("size", "Size_ids", 5),
    ("pattern", "Pattern_ids", 9), ("part", "Category_ids", 22),
])  # fmt: skip
def test_synthetic_id_out_of_range(tmp_path: Path, name: str, folder: str, bad_id: int) -> None:
    root = make_synthetic(tmp_path)
    values = cv2.imread(str(root / folder / "a.png"), cv2.IMREAD_UNCHANGED)
    values[0, 0] = bad_id
    _write_png(root / folder / "a.png", values)
    with pytest.raises(DataError, match=rf"{folder}/a.png: {name} id\(s\) \[{bad_id}\]"):
        open_dataset(root).sample_by_id("a")


def test_ignore_label_255_is_kept(tmp_path: Path) -> None:
    root = make_cihp(tmp_path)
    parts, _ = _person_maps(cihp=True)
    parts[0, :3] = 255
    _write_png(root / "Category_ids" / "0001.png", parts)
    assert (open_dataset(root)[0].parts[0, :3] == 255).all()


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"persons": 3}', "'persons' list"),
        ('{"persons": [{"human_id": 0}]}', "human_id"),
        ("{oops", "invalid JSON"),
    ],
)
def test_bad_description_json(tmp_path: Path, text: str, message: str) -> None:
    root = make_synthetic(tmp_path)
    (root / "Descriptions" / "a.json").write_text(text)
    with pytest.raises(DataError, match=f"Descriptions/a.json: .*{message}"):
        open_dataset(root).sample_by_id("a")


def test_bad_roots_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        open_dataset(tmp_path / "nope")
    root = make_cihp(tmp_path / "c")
    with pytest.raises(ValueError, match="unknown dataset kind 'voc'"):
        open_dataset(root, kind="voc")
    with pytest.raises(ValueError, match="is for kind 'cihp'"):
        open_dataset(root, kind="ccihp", mapping=default_mapping("cihp"))
    with pytest.raises(TypeError, match="mapping must be"):
        open_dataset(root, mapping=3)  # type: ignore[arg-type]
    ds = open_dataset(root)
    assert ds[np.int64(1)].image_id == "0002"  # samplers may yield numpy integers
    with pytest.raises(TypeError, match="must be an int"):
        ds["0001"]  # type: ignore[index]
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(KeyError, match="'zzz'"):
        ds.sample_by_id("zzz")


def test_video_dataset_yaml_is_refused(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"format": layout.FORMAT_VIDEO}))
    with pytest.raises(DataError, match="video dataset"):
        open_dataset(root)


@pytest.mark.parametrize(
    "table, message",
    [
        ({"kind": "cihp", "parts": {1: 30}}, "target must be"),
        ({"kind": "cihp", "partz": {}}, "unknown key 'partz'"),
        ({"kind": "cihp", "parts": {0: 3}}, "must map to 0"),
        ({"kind": "ccihp", "color": {300: 1}}, "0..255"),
    ],
)
def test_bad_mapping_yaml_raises_config_error(tmp_path: Path, table: dict, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(ConfigError, match=message) as error:
        load_mapping(path)
    assert str(path) in str(error.value)


def test_violation_checker_catches_broken_instance_ids(tmp_path: Path) -> None:
    root = make_cihp(tmp_path)
    _, humans = _person_maps(cihp=True)
    bad = layout.instance_ids(humans, _person_maps(cihp=True)[0], layout.RULE_CCIHP).astype(
        np.uint8
    )
    _write_png(root / "Instance_ids" / "0001.png", bad)  # 22h+c where CIHP says 20h+c
    ds = open_dataset(root)
    violations = sample_violations(ds[0], DatasetMapping(**ds.info["mapping"]))
    assert len(violations) == 1 and "20*(human-1)+class" in violations[0]


def test_round_trip_with_the_synthetic_engine(tmp_path: Path) -> None:
    """What the engine renders in memory is exactly what the reader reads back from disk."""
    writer = pytest.importorskip("describeme.data.synth.writer")
    images = pytest.importorskip("describeme.data.synth.images")
    config = images.SynthConfig() if hasattr(images, "SynthConfig") else None
    if config is None or not hasattr(writer, "write_image_dataset"):
        pytest.skip("synthetic engine API not available")
    writer.write_image_dataset(tmp_path / "d", config, seed=5, count=2)
    ds = open_dataset(tmp_path / "d")
    assert ds.kind == "synthetic" and len(ds) == 2
    for index in range(2):
        expected = images.render_image(config, 5, index)
        sample = ds.sample_by_id(expected.image_id)
        for name in ("parts", "humans", "color", "size", "pattern"):
            np.testing.assert_array_equal(getattr(sample, name), getattr(expected, name))
        np.testing.assert_allclose(sample.keypoints, expected.keypoints)
        assert sample_violations(sample, DatasetMapping(**ds.info["mapping"])) == []
