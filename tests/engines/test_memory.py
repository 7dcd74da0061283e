from engines.memory import MemoryManager


def loader(name, log):
    def load():
        log.append(name)
        return {"name": name}

    return load


def test_least_recently_used_is_evicted_first():
    unloaded = []
    mm = MemoryManager(budget_bytes=300)
    loads: list[str] = []
    for name in ("a", "b", "c"):
        mm.get(name, loader(name, loads), size_bytes=100, unload=lambda v: unloaded.append(v["name"]))
    mm.get("a", loader("a", loads), size_bytes=100)  # a is now the most recent: b is the oldest
    mm.get("d", loader("d", loads), size_bytes=100, unload=lambda v: unloaded.append(v["name"]))
    assert mm.loaded() == ["c", "a", "d"]
    assert unloaded == ["b"]
    mm.get("e", loader("e", loads), size_bytes=200)
    assert mm.evictions == ["b", "c", "a"]
    assert mm.loaded() == ["d", "e"]
    assert mm.used_bytes == 300
    assert loads == ["a", "b", "c", "d", "e"]  # getting a loaded entry never reloads it


def test_peeking_neither_loads_nor_counts_as_a_use():
    mm = MemoryManager(budget_bytes=200)
    loads: list[str] = []
    for name in ("a", "b"):
        mm.get(name, loader(name, loads), size_bytes=100)
    assert mm.peek("a") == {"name": "a"} and mm.peek("zzz") is None
    mm.get("c", loader("c", loads), size_bytes=100)  # a stays the oldest although it was peeked at
    assert mm.loaded() == ["b", "c"] and loads == ["a", "b", "c"]


def test_an_entry_bigger_than_the_budget_loads_alone():
    mm = MemoryManager(budget_bytes=100)
    mm.get("small", lambda: 1, size_bytes=50)
    mm.get("huge", lambda: 2, size_bytes=500)
    assert mm.loaded() == ["huge"]


def test_size_is_measured_from_torch_modules():
    import torch

    mm = MemoryManager(budget_bytes=10**9)
    mm.get("lin", lambda: torch.nn.Linear(10, 10))
    assert mm.used_bytes == (10 * 10 + 10) * 4
    assert mm.load_counts["lin"] == 1
