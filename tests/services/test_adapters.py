"""AdapterService: import (safetensors only, zip-safe, checked against the base), mix, rename,
delete, export and merge — on the starter GPT-2, no HTTP."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
import torch

from engines.starter import STARTER_TEXT
from studio.config import StudioConfig
from studio.services import Studio
from studio.services.auth import User
from studio.services.datasets import IncomingFile
from studio.services.errors import Conflict, Forbidden, Invalid, NotFound, UnsupportedType
from studio.store import new_id, utcnow
from tests.engines.test_text_train import random_adapter

VIEWER = User(name="viewer", is_admin=False)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    studio = Studio(
        StudioConfig(data_dir=tmp_path_factory.mktemp("adapters") / "data", offline=True, device="cpu")
    )
    studio.models.registry.location(studio.models.resolve(STARTER_TEXT, "text"))  # build the starter once
    yield studio
    studio.close()


@pytest.fixture
def made(studio, tmp_path):
    """Make adapter folders in tmp_path: made('a', rank=4, seed=1) → folder."""
    return lambda name, **kw: random_adapter(studio.data_dir, tmp_path / name, **kw)


def zip_of(
    folder: Path, dest: Path, prefix: str = "my-adapter/", extra: dict[str, bytes] | None = None
) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, prefix + f.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return dest


def files_of(folder: Path) -> list[IncomingFile]:
    return [IncomingFile(name=f.name, path=f) for f in sorted(folder.iterdir())]


def leftovers(studio) -> list[str]:
    return sorted(p.name for p in (studio.data_dir / "tmp").iterdir() if p.name.startswith("upload-"))


def import_zip(studio, folder: Path, tmp_path: Path, name: str = "imported") -> dict:
    zipped = zip_of(folder, tmp_path / f"{name}.zip")
    return studio.adapters.import_adapter([IncomingFile(name="adapter.zip", path=zipped)], STARTER_TEXT, name)


# -- import ------------------------------------------------------------------------------------
def test_a_zipped_adapter_is_imported_under_a_new_id(studio, made, tmp_path):
    zipped = zip_of(made("a"), tmp_path / "a.zip", extra={"my-adapter/training_args.bin": b"\x80\x04pickle"})
    row = studio.adapters.import_adapter(
        [IncomingFile(name="../../a.zip", path=zipped)], STARTER_TEXT, "  Foxes "
    )
    assert row["id"].startswith("ad_") and row["name"] == "Foxes" and row["source"] == "imported"
    assert row["type"] == "text_adapter" and row["base_model"] == STARTER_TEXT and row["job_id"] is None
    assert row["meta"]["adapter"]["rank"] == 4 and "training_args.bin" in row["meta"]["warnings"][0]
    folder = studio.data_dir / "models" / "adapters" / row["id"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert row["id"] in [a["id"] for a in studio.adapters.list()]
    assert row["id"] in [a["id"] for a in studio.models.list_models()["text_adapters"]]
    assert leftovers(studio) == []

    loose = studio.adapters.import_adapter(files_of(made("b", seed=2)), STARTER_TEXT, "loose files")
    assert (studio.data_dir / "models" / "adapters" / loose["id"] / "adapter_model.safetensors").is_file()


def test_pickled_weights_are_refused_with_a_way_to_convert(studio, made, tmp_path):
    folder = made("p")
    (folder / "adapter_model.safetensors").unlink()
    torch.save({"w": torch.zeros(2)}, folder / "adapter_model.bin")
    before = studio.adapters.list()
    for files in (files_of(folder), [IncomingFile("p.zip", zip_of(folder, tmp_path / "p.zip"))]):
        with pytest.raises(UnsupportedType) as err:
            studio.adapters.import_adapter(files, STARTER_TEXT, "pickled")
        assert "adapter_model.bin" in err.value.message and "safe_serialization=True" in err.value.message
    assert studio.adapters.list() == before and leftovers(studio) == []


def test_an_adapter_for_another_base_is_a_422(studio, made, tmp_path):
    narrow = made("narrow", n_embd=32)
    with pytest.raises(Invalid) as err:
        studio.adapters.import_adapter(files_of(narrow), STARTER_TEXT, "narrow")
    assert err.value.status == 422 and "do not fit" in err.value.message
    other = made("other")
    config = json.loads((other / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "openai-community/gpt2-medium"
    (other / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(Invalid, match="gpt2-medium"):
        studio.adapters.import_adapter(files_of(other), STARTER_TEXT, "other")
    with pytest.raises(Invalid, match="Unknown text model"):
        studio.adapters.import_adapter(files_of(made("x")), "no/such-model", "x")
    assert leftovers(studio) == []


@pytest.mark.parametrize("entry", ["../adapter_config.json", "/etc/adapter_config.json", "link"])
def test_unsafe_zip_entries_are_refused(studio, made, tmp_path, entry):
    zipped = zip_of(made("z"), tmp_path / "z.zip")
    with zipfile.ZipFile(zipped, "a") as zf:
        info = zipfile.ZipInfo(entry)
        if entry == "link":
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "{}")
    with pytest.raises(Invalid) as err:
        studio.adapters.import_adapter([IncomingFile("z.zip", zipped)], STARTER_TEXT, "z")
    assert err.value.code == "unsafe_archive"


def test_only_admins_change_adapters(studio, made, tmp_path):
    row = import_zip(studio, made("adm"), tmp_path)
    with pytest.raises(Forbidden):
        studio.adapters.rename(row["id"], "mine now", user=VIEWER)
    with pytest.raises(Forbidden):
        studio.adapters.delete(row["id"], user=VIEWER)
    with pytest.raises(Forbidden):
        studio.adapters.import_adapter(files_of(made("adm2")), STARTER_TEXT, "x", user=VIEWER)
    assert studio.adapters.get(row["id"])["name"] == "imported"


# -- mix ---------------------------------------------------------------------------------------
def test_mixing_two_adapters_gives_a_third_that_plain_peft_loads(studio, made, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    a = import_zip(studio, made("ma", rank=4, seed=1), tmp_path, "A")
    b = import_zip(studio, made("mb", rank=8, seed=2), tmp_path, "B")
    mixed = studio.adapters.mix([{"id": a["id"], "weight": 0.7}, {"id": b["id"], "weight": 0.3}])
    assert mixed["source"] == "mixed" and mixed["name"] == "0.7×A + 0.3×B"
    assert mixed["meta"]["combination_type"] == "cat" and mixed["meta"]["rank"] == 12
    assert [(s["id"], s["weight"]) for s in mixed["meta"]["sources"]] == [(a["id"], 0.7), (b["id"], 0.3)]
    base = AutoModelForCausalLM.from_pretrained(studio.data_dir / "models" / "starter" / "gpt2-tiny")
    PeftModel.from_pretrained(base, studio.data_dir / "models" / "adapters" / mixed["id"])

    with pytest.raises(Invalid, match="at least|2 to"):
        studio.adapters.mix([{"id": a["id"], "weight": 1}])
    with pytest.raises(Invalid, match="once"):
        studio.adapters.mix([{"id": a["id"], "weight": 1}, {"id": a["id"], "weight": 2}])
    with pytest.raises(Invalid, match="non-zero"):
        studio.adapters.mix([{"id": a["id"], "weight": 0}, {"id": b["id"], "weight": 1}])
    other = fake_row(studio, "text_adapter", base_model="openai-community/gpt2")
    with pytest.raises(Invalid) as err:
        studio.adapters.mix([{"id": a["id"]}, {"id": other}])
    assert err.value.code == "base_model_mismatch"
    with pytest.raises(NotFound):
        studio.adapters.mix([{"id": a["id"]}, {"id": "ad_0000000000000000"}])


def fake_row(studio, type_: str, base_model: str = STARTER_TEXT) -> str:
    adapter_id = new_id("ad_")
    with studio.store.transaction() as c:
        c.execute(
            "INSERT INTO adapters (id, name, type, base_model, path, meta, created_at) VALUES (?, ?, ?, ?, ?, '{}', ?)",
            (adapter_id, "fake", type_, base_model, f"models/adapters/{adapter_id}", utcnow()),
        )
    return adapter_id


# -- rename, delete, export, merge -------------------------------------------------------------
def test_rename_changes_only_the_display_name(studio, made, tmp_path):
    row = import_zip(studio, made("rn"), tmp_path)
    renamed = studio.adapters.rename(row["id"], "../../etc/passwd")
    assert (
        renamed["name"] == "../../etc/passwd"
        and (studio.data_dir / "models" / "adapters" / row["id"]).is_dir()
    )
    for bad in ("", "   ", "x" * 101):
        with pytest.raises(Invalid):
            studio.adapters.rename(row["id"], bad)


def test_delete_removes_row_and_folder_unless_a_job_still_uses_it(studio, made, tmp_path):
    row = import_zip(studio, made("del"), tmp_path)
    folder = studio.data_dir / "models" / "adapters" / row["id"]
    job_id = new_id("job_")
    with studio.store.transaction() as c:
        c.execute(
            "INSERT INTO jobs (id, kind, params, status, created_at, updated_at) VALUES (?, 'text-feedback', ?, 'queued', ?, ?)",
            (job_id, json.dumps({"adapter": row["id"]}), utcnow(), utcnow()),
        )
    with pytest.raises(Conflict, match=job_id):
        studio.adapters.delete(row["id"])
    assert folder.is_dir()
    with studio.store.transaction() as c:
        c.execute("UPDATE jobs SET status = 'completed' WHERE id = ?", (job_id,))
    from studio.services.text import TextGenerateParams

    out = studio.text.generate(
        TextGenerateParams(prompt="the", adapter=row["id"], max_new_tokens=2), user=User("t", is_admin=False)
    )
    assert out["adapter"] == row["id"] and studio.models.memory.is_loaded(f"text:{STARTER_TEXT}")
    studio.adapters.delete(row["id"])
    assert not folder.exists() and row["id"] not in [a["id"] for a in studio.adapters.list()]
    assert not studio.models.memory.is_loaded(
        f"text:{STARTER_TEXT}"
    )  # no base with a deleted adapter attached
    with pytest.raises(NotFound):
        studio.adapters.delete(row["id"])


def test_export_zips_the_folder_and_merge_export_a_full_model(studio, made, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    source = made("ex", seed=5)
    row = import_zip(studio, source, tmp_path)
    zipped = studio.adapters.export(row["id"])
    names = sorted(zipfile.ZipFile(zipped).namelist())
    assert names == [f"{row['id']}/{n}" for n in (
        "EXPORT.md", "README.md", "adapter_config.json", "adapter_model.safetensors", "version.json")]
    # It carries the version and says what it holds and leaves out
    version = json.loads(zipfile.ZipFile(zipped).read(f"{row['id']}/version.json"))
    assert (version["id"], version["name"], version["base_model"]) == (row["id"], row["name"], STARTER_TEXT)
    note = studio.adapters.export_note(row["id"])
    assert "Leaves out: the base model" in note and STARTER_TEXT in note
    assert note == zipfile.ZipFile(zipped).read(f"{row['id']}/EXPORT.md").decode()
    # An exported zip imports again as it is.
    again = studio.adapters.import_adapter([IncomingFile("again.zip", zipped)], STARTER_TEXT, "again")
    assert again["id"] != row["id"]

    merged_zip = studio.adapters.merge_export(row["id"])
    out = tmp_path / "unzipped"
    zipfile.ZipFile(merged_zip).extractall(out)
    folder = out / f"{row['id']}-merged"
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {
        p.name for p in folder.iterdir()
    }
    starter = studio.data_dir / "models" / "starter" / "gpt2-tiny"
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        want = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(starter), source)(ids).logits
        got = AutoModelForCausalLM.from_pretrained(folder)(ids).logits
    assert torch.allclose(want, got, atol=1e-4)
    with pytest.raises(Invalid):
        studio.adapters.merge_export(fake_row(studio, "image_lora"))
    with pytest.raises(NotFound):
        studio.adapters.export("../../studio.db")


def test_an_exported_zip_round_trips_through_bytes(studio, made, tmp_path):
    """A zip built in memory the way a browser uploads it."""
    buffer = io.BytesIO()
    folder = made("mem")
    with zipfile.ZipFile(buffer, "w") as zf:
        for f in folder.iterdir():
            zf.writestr(f.name, f.read_bytes())
    path = tmp_path / "upload.part"
    path.write_bytes(buffer.getvalue())
    row = studio.adapters.import_adapter([IncomingFile("weird name", path)], STARTER_TEXT, "bytes")
    assert row["meta"]["adapter"]["num_tensors"] == 4
