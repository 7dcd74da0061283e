"""The adapters table: rows by id and type, by type in order, the folders rows point to; rename, delete."""

from studio.store import Store, adapters, utcnow


def add(store: Store, adapter_id: str, type_: str, created_at: str) -> None:
    with store.transaction() as c:
        c.execute("INSERT INTO adapters (id, name, type, base_model, path, created_at) VALUES (?,?,?,?,?,?)",
                  (adapter_id, adapter_id, type_, "base", f"models/adapters/{adapter_id}", created_at))


def test_rows_are_found_by_id_and_type_and_listed_newest_first(store):
    add(store, "ad_old", "text_adapter", "2030-01-01T00:00:00.000Z")
    add(store, "ad_new", "text_adapter", "2030-01-02T00:00:00.000Z")
    add(store, "ad_lora", "image_lora", utcnow())
    assert adapters.get(store, "ad_old", "text_adapter")["base_model"] == "base"
    assert adapters.get(store, "ad_old", "image_lora", "gan") is None  # exists, but not of these types
    assert adapters.get(store, "ad_lora")["type"] == "image_lora"
    assert adapters.exists(store, "ad_lora") and not adapters.exists(store, "ad_none")
    assert [r["id"] for r in adapters.of_types(store, "text_adapter")] == ["ad_new", "ad_old"]
    assert [r["id"] for r in adapters.of_types(store, "text_adapter", oldest_first=True)] == ["ad_old", "ad_new"]
    assert adapters.ids_of_type(store, "image_lora") == ["ad_lora"]
    assert sorted(adapters.paths(store)) == ["models/adapters/ad_lora", "models/adapters/ad_new",
                                             "models/adapters/ad_old"]


def test_a_row_is_inserted_with_its_meta_renamed_and_deleted(store):
    adapters.insert(store, id="ad_1", name="mine", type="text_adapter", base_model="base", job_id=None,
                    path="models/adapters/ad_1", meta={"source": "import"})
    adapters.rename(store, "ad_1", "yours")
    row = adapters.get(store, "ad_1")
    assert (row["name"], row["meta"], row["created_at"] > "2020") == ("yours", '{"source": "import"}', True)
    adapters.delete(store, "ad_1")
    assert adapters.get(store, "ad_1") is None
