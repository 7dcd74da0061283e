"""The dashboard's approval curve: a version's approval so far after each of its ratings."""

from __future__ import annotations

from studio.config import StudioConfig
from studio.services.studio import Studio


def test_each_rating_adds_a_point_with_the_approval_so_far(tmp_path):
    studio = Studio(StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu"))
    try:
        assert studio.feedback.approval_curve() == []
        for thumb, adapter in (("up", None), ("down", None), ("up", "ad_0000000000000001"), ("down", None)):
            out = studio.outputs.record(kind="text", prompt="the", params={}, model="m", adapter=adapter, seed=1,
                                        user="t", text="the fox")
            studio.feedback.rate(out["id"], thumb, "t")
        curve = studio.feedback.approval_curve()
        base = [p for p in curve if p["version"] == "m"]
        assert [round(p["approval"], 2) for p in base] == [1.0, 0.5, 0.33]
        assert [p["ratings"] for p in base] == [1, 2, 3]
        assert [p["approval"] for p in curve if p["version"] != "m"] == [1.0]
        assert curve[0]["at"] <= curve[-1]["at"]
    finally:
        studio.close()
