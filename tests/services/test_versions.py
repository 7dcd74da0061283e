"""One label for a version, written and read in one place: `model` or `model+adapter`."""

from studio.services.versions import parse_version, version_label, versions_in


def test_a_label_reads_back_as_the_version_it_names():
    for model, adapter in (("starter/gpt2-tiny", None), ("openai-community/gpt2", "ad_00000000000000a1")):
        assert parse_version(version_label(model, adapter)) == (model, adapter)
    assert version_label("m", "") == "m" and parse_version("m+") == ("m", None)


def test_versions_of_a_kind_are_its_models_then_each_adapter_on_its_base():
    listing = {"text": [{"id": "m1"}, {"id": "m2"}], "text_adapters": [{"id": "a1", "base_model": "m2"}],
               "speech": [{"id": "v"}]}
    assert versions_in(listing, "text") == ["m1", "m2", "m2+a1"]
    assert versions_in(listing, "speech") == ["v"]
