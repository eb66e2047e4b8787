from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from satpipe.errors import DataError, DatasetNotFoundError
from satpipe.io.dataset_files import check_chips, check_scenes, list_chips, list_scenes
from satpipe.io.description import IGNORE, PALETTE, read_description

GOOD = """\
task: segmentation
classes: [background, building, water]
ignore_index: 255
bands: [blue, green, red, nir]
images: "images/*.tif"
masks: "masks/{stem}.tif"
"""


def _tif(path: Path, data: np.ndarray, crs: str | None = "EPSG:32633", origin: float = 500000.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = data if data.ndim == 3 else data[None]
    geo = {"crs": crs, "transform": from_origin(origin, 5200000, 10, 10)} if crs else {}
    with rasterio.open(
        path, "w", driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2], dtype=data.dtype,
        **geo,
    ) as dst:  # fmt: skip
        dst.write(data)


def _dataset(root: Path, n: int = 3, size: int = 32, text: str = GOOD) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        _tif(root / "images" / f"s{i}.tif", rng.integers(1, 5000, (4, size, size), dtype=np.uint16))
        mask = rng.integers(0, 3, (size, size), dtype=np.uint8)
        mask[:2] = 255
        _tif(root / "masks" / f"s{i}.tif", mask)
    (root / "dataset.yaml").write_text(text)
    return root


def _check(root: Path) -> None:
    desc = read_description(root)
    check_scenes(desc, list_scenes(desc))


def test_a_good_dataset_lists_and_checks(tmp_path: Path) -> None:
    desc = read_description(_dataset(tmp_path))
    assert desc.classes == ("background", "building", "water") and desc.values == (0, 1, 2)
    assert desc.colors == PALETTE[:3] and desc.root == tmp_path
    scenes = list_scenes(desc)
    assert [s.stem for s in scenes] == ["s0", "s1", "s2"] and scenes[0].mask == tmp_path / "masks" / "s0.tif"
    result = check_scenes(desc, scenes)
    assert (result.image.count, result.image.dtype, result.georeferenced) == (4, "uint16", True)
    assert all(sum(c) + result.ignored_pixels[s] == 32 * 32 for s, c in result.class_pixels.items())
    assert all(result.ignored_pixels[s] == 64 for s in result.class_pixels)


def test_a_class_mapping_is_remapped_to_contiguous_ids(tmp_path: Path) -> None:
    text = GOOD.replace("[background, building, water]", "{7: water, 3: building, 4: road}").replace("255", "0")
    (tmp_path / "dataset.yaml").write_text(text + "colors: {water: '#0000FF'}\n")
    desc = read_description(tmp_path)
    assert desc.classes == ("building", "road", "water") and desc.values == (3, 4, 7)
    mask = np.array([[0, 3, 4], [7, 9, 3]], np.uint16)
    np.testing.assert_array_equal(desc.class_ids(mask), [[IGNORE, 0, 1], [2, IGNORE, 0]])
    assert desc.rgb_colors()[2] == (0, 0, 255)


def test_loveda_layout_png_masks_beside_images_and_splits_by_glob(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for split, domain, n in (("Train", "Urban", 10), ("Train", "Rural", 11), ("Val", "Urban", 12)):
        base = tmp_path / split / domain
        (base / "images_png").mkdir(parents=True)
        (base / "masks_png").mkdir()
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(base / "images_png" / f"{n}.png")
        Image.fromarray(rng.integers(0, 8, (16, 16), dtype=np.uint8)).save(base / "masks_png" / f"{n}.png")
    (tmp_path / "Test" / "Urban" / "images_png").mkdir(parents=True)  # LoveDA's test masks are withheld
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "Test" / "Urban" / "images_png" / "13.png")
    (tmp_path / "dataset.yaml").write_text(
        "task: segmentation\n"
        "classes: {1: background, 2: building, 3: road, 4: water, 5: barren, 6: forest, 7: agriculture}\n"
        "ignore_index: 0\n"
        "images: [Train/*/images_png/*.png, Val/*/images_png/*.png]\n"
        "masks: '{parent}/../masks_png/{stem}.png'\n"
        "splits: {train: 'Train/*/images_png/*.png', val: 'Val/*/images_png/*.png'}\n"
    )
    desc = read_description(tmp_path)
    scenes = list_scenes(desc)
    assert [(s.stem, s.split) for s in scenes] == [("10", "train"), ("11", "train"), ("12", "val")]
    assert scenes[2].mask.resolve() == (tmp_path / "Val" / "Urban" / "masks_png" / "12.png").resolve()
    result = check_scenes(desc, scenes)
    assert (result.image.count, result.image.dtype, result.georeferenced) == (3, "uint8", False)


def test_split_lists_name_files_or_stems_and_the_rest_is_left_to_the_seeded_split(tmp_path: Path) -> None:
    _dataset(tmp_path, n=4, text=GOOD + "splits: {val: val.txt, test: test.txt}\n")
    (tmp_path / "val.txt").write_text("# validation\ns1.tif\n\n")
    (tmp_path / "test.txt").write_text("images/s3\n")
    splits = {s.stem: s.split for s in list_scenes(read_description(tmp_path))}
    assert splits == {"s0": None, "s1": "val", "s2": None, "s3": "test"}


def test_a_georeferenced_image_may_have_a_plain_mask(tmp_path: Path) -> None:
    _dataset(tmp_path, n=1)
    _tif(tmp_path / "masks" / "s0.tif", np.zeros((32, 32), np.uint8), crs=None)
    _check(tmp_path)


def test_classification_lists_chips_per_class_folder(tmp_path: Path) -> None:
    for name, n in (("forest", 2), ("sea[1]", 3)):
        for i in range(n):
            _tif(tmp_path / name / f"{name}_{i}.tif", np.full((6, 8, 8), i, np.uint16), crs=None)
    text = "task: classification\nclasses: [forest, 'sea[1]']\nimages: '{class}/*.tif'\n"
    (tmp_path / "dataset.yaml").write_text(text)
    desc = read_description(tmp_path)
    chips = list_chips(desc)
    assert [(c.stem, c.label) for c in chips] == [("forest_0", 0), ("forest_1", 0)] + [
        (f"sea[1]_{i}", 1) for i in range(3)
    ]
    assert check_chips(desc, chips).count == 6


# -- bad input: one line naming the file and the problem ------------------------------------------------------


def _fails(root: Path, *expected: str, error: type[Exception] = DataError) -> str:
    with pytest.raises(error) as info:
        _check(root)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, message
    return message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("classes:", "clases:"), ["unknown key 'clases'", "did you mean 'classes'"]),
        (lambda t: t.replace('images: "images/*.tif"\n', ""), ["images: missing key"]),
        (lambda t: t + "task: classification\n", ["not valid YAML", "line 7", "'task' appears twice"]),
        (lambda t: t.replace("[background, building, water]", "[background, building"), ["not valid YAML", "line"]),
        (lambda t: t.replace("segmentation", "segmentaton"), ["task: 'segmentaton' is not one of", "segmentation"]),
        (lambda t: t.replace("[background, building, water]", "background"), ["classes: expected a list"]),
        (lambda t: t.replace("[background, building, water]", "[water, building, water]"), ["'water' appears twice"]),
        (lambda t: t.replace("255", "2"), ["ignore_index: 2 is also the mask value of class 'water'"]),
        (lambda t: t.replace("255", "'255'"), ["ignore_index: expected a whole number", "a string"]),
        (lambda t: t.replace("images/*.tif", "images/**.tif"), ["images: bad glob 'images/**.tif'"]),
        (lambda t: t.replace("images/*.tif", "/data/*.tif"), ["images: '/data/*.tif' is absolute"]),
        (lambda t: t.replace("{stem}", "{name}"), ["masks: unknown field {name}"]),
        (lambda t: t.replace("masks/{stem}.tif", "masks/one.tif"), ["does not contain {stem}"]),
        (lambda t: t.replace("images/*.tif", "imgs/*.tif"), ["images: 'imgs/*.tif' matches no file"]),
        (lambda t: t + "colors: {buildings: '#ffffff'}\n", ["colors: 'buildings' is not a class", "'building'"]),
        (lambda t: t + "colors: {water: blue}\n", ["colors.water: 'blue' is not a colour"]),
        (lambda t: t + "splits: {validation: val.txt}\n", ["unknown split 'validation'; use train, val, test"]),
        (lambda t: t + "splits: {val: missing.txt}\n", ["splits.val: list file", "missing.txt does not exist"]),
        (lambda t: t.replace("[blue, green, red, nir]", "[blue, green, red]"), ["s0.tif: 4 band(s)", "lists 3"]),
    ],
    ids=lambda v: "" if callable(v) else v[0][:40],
)
def test_bad_descriptions(tmp_path: Path, edit: object, expected: list[str]) -> None:
    _dataset(tmp_path, text=edit(GOOD))  # type: ignore[operator]
    message = _fails(tmp_path, *expected)
    assert message.startswith(str(tmp_path)), message


def test_no_description(tmp_path: Path) -> None:
    _fails(tmp_path, str(tmp_path), "no dataset.yaml", error=DatasetNotFoundError)


def test_mask_missing(tmp_path: Path) -> None:
    (_dataset(tmp_path) / "masks" / "s1.tif").unlink()
    _fails(tmp_path, "masks/s1.tif: mask of s1.tif does not exist")


def test_mask_size_differs(tmp_path: Path) -> None:
    _tif(_dataset(tmp_path) / "masks" / "s2.tif", np.zeros((32, 30), np.uint8))
    _fails(tmp_path, "masks/s2.tif: 30x32 pixels, but its image s2.tif is 32x32")


def test_mask_crs_differs(tmp_path: Path) -> None:
    _tif(_dataset(tmp_path) / "masks" / "s0.tif", np.zeros((32, 32), np.uint8), crs="EPSG:4326")
    _fails(tmp_path, "masks/s0.tif: CRS EPSG:4326, but its image s0.tif has EPSG:32633")


def test_mask_transform_differs(tmp_path: Path) -> None:
    _tif(_dataset(tmp_path) / "masks" / "s0.tif", np.zeros((32, 32), np.uint8), origin=500010.0)
    _fails(tmp_path, "masks/s0.tif: transform differs from its image s0.tif")


def test_mask_value_outside_the_classes(tmp_path: Path) -> None:
    mask = np.zeros((32, 32), np.uint8)
    mask[5, 5], mask[6, 6] = 3, 200
    _tif(_dataset(tmp_path) / "masks" / "s1.tif", mask)
    _fails(tmp_path, "masks/s1.tif: mask value(s) 3, 200 not in classes (0, 1, 2) or ignore_index 255")


def test_mask_of_several_bands_or_fractions(tmp_path: Path) -> None:
    _tif(_dataset(tmp_path) / "masks" / "s1.tif", np.zeros((3, 32, 32), np.uint8))
    _fails(tmp_path, "masks/s1.tif: mask has 3 bands")
    _tif(tmp_path / "masks" / "s1.tif", np.zeros((32, 32), np.float32))
    _fails(tmp_path, "masks/s1.tif: mask data type float32")


def test_band_count_varies(tmp_path: Path) -> None:
    _dataset(tmp_path, text=GOOD.replace("bands: [blue, green, red, nir]\n", ""))
    _tif(tmp_path / "images" / "s2.tif", np.ones((5, 32, 32), np.uint16))
    _fails(tmp_path, "images/s2.tif: 5 band(s), but", "s0.tif has 4; band counts must agree")


def test_dtype_varies(tmp_path: Path) -> None:
    _tif(_dataset(tmp_path) / "images" / "s1.tif", np.ones((4, 32, 32), np.float32))
    _fails(tmp_path, "images/s1.tif: data type float32, but", "s0.tif is uint16")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "dataset.yaml").write_text(GOOD)
    _fails(tmp_path, "dataset.yaml: images: 'images/*.tif' matches no file")


def test_truncated_image(tmp_path: Path) -> None:
    image = _dataset(tmp_path) / "images" / "s1.tif"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    _fails(tmp_path, "images/s1.tif: unreadable image")


def test_not_an_image(tmp_path: Path) -> None:
    (_dataset(tmp_path) / "images" / "s1.tif").write_text("not a raster")
    _fails(tmp_path, "images/s1.tif: unreadable image")


def test_split_list_names_an_unknown_stem(tmp_path: Path) -> None:
    _dataset(tmp_path, text=GOOD + "splits: {test: test.txt}\n")
    (tmp_path / "test.txt").write_text("s1\ns9\n")
    _fails(tmp_path, "test.txt: line 2: 's9' names no image of")


def test_overlapping_splits(tmp_path: Path) -> None:
    _dataset(tmp_path, text=GOOD + "splits: {val: val.txt, test: test.txt}\n")
    (tmp_path / "val.txt").write_text("s0\ns1\n")
    (tmp_path / "test.txt").write_text("s1\n")
    _fails(tmp_path, "splits.test: 's1' is in both the val and the test split")


def test_stems_repeat_across_folders(tmp_path: Path) -> None:
    _dataset(tmp_path, text=GOOD.replace("images/*.tif", "images/**/*.tif"))
    _tif(tmp_path / "images" / "more" / "s1.tif", np.ones((4, 32, 32), np.uint16))
    _fails(tmp_path, "share the stem 's1'")


def test_classification_class_without_images(tmp_path: Path) -> None:
    _tif(tmp_path / "forest" / "f0.tif", np.ones((3, 8, 8), np.uint8), crs=None)
    (tmp_path / "dataset.yaml").write_text("task: classification\nclasses: [forest, sea]\nimages: '{class}/*.tif'\n")
    with pytest.raises(DataError, match=r"dataset.yaml: images: class 'sea': 'sea/\*.tif' matches no file"):
        list_chips(read_description(tmp_path))


def test_classification_needs_the_class_field_and_no_masks(tmp_path: Path) -> None:
    (tmp_path / "dataset.yaml").write_text("task: classification\nclasses: [a, b]\nimages: 'x/*.tif'\n")
    with pytest.raises(DataError, match=r"images: 'x/\*.tif' needs \{class\}"):
        read_description(tmp_path)
    (tmp_path / "dataset.yaml").write_text("task: classification\nclasses: [a, b]\nimages: '{class}/*'\nmasks: m\n")
    with pytest.raises(DataError, match="masks: classification datasets have no masks"):
        read_description(tmp_path)
