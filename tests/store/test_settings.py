"""The settings table: one JSON value per key, the last write wins."""

from studio.store import settings


def test_values_round_trip_as_json_and_a_second_put_replaces_the_first(store):
    settings.put(store, "image_content_filter", False, "admin")
    settings.put(store, "precision.text", "bf16", None)
    settings.put(store, "precision.text", "fp32", "admin")
    assert settings.all_(store) == {"image_content_filter": False, "precision.text": "fp32"}
