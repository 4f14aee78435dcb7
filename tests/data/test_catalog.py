import pytest

from usvid.data.catalog import DatasetCatalog, MetadataCatalog


def test_register_get_list_remove(clean_catalog):
    calls = []
    DatasetCatalog.register("toy_a", lambda: calls.append(1) or [{"video_id": 1}])
    assert "toy_a" in DatasetCatalog.list()
    assert calls == []  # registering is lazy
    assert DatasetCatalog.get("toy_a") == [{"video_id": 1}]
    assert calls == [1]
    DatasetCatalog.remove("toy_a")
    assert "toy_a" not in DatasetCatalog.list()


def test_unknown_name_lists_registered_ones(clean_catalog):
    DatasetCatalog.register("toy_known", list)
    with pytest.raises(KeyError, match="toy_missing.*toy_known"):
        DatasetCatalog.get("toy_missing")


def test_duplicate_registration_and_non_callable_are_errors(clean_catalog):
    DatasetCatalog.register("toy_dup", list)
    with pytest.raises(KeyError, match="already registered"):
        DatasetCatalog.register("toy_dup", list)
    with pytest.raises(TypeError, match="callable"):
        DatasetCatalog.register("toy_bad", [1, 2])


def test_metadata_attributes(clean_catalog):
    meta = MetadataCatalog.get("toy_meta")
    meta.set(thing_classes=["lesion"], evaluator_type="ultrasound_video")
    assert MetadataCatalog.get("toy_meta").thing_classes == ["lesion"]
    assert meta.get("json_file", "none") == "none"
    meta.thing_classes = ["lesion"]  # same value again is fine
    with pytest.raises(ValueError, match="thing_classes"):
        meta.thing_classes = ["other"]
    with pytest.raises(AttributeError, match="image_root.*evaluator_type"):
        _ = meta.image_root
    MetadataCatalog.remove("toy_meta")
    assert MetadataCatalog.get("toy_meta").get("thing_classes") is None
