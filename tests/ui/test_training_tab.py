"""What the Training tab shows: a typed loss frame, a log without library noise, a few-steps warning."""

from datetime import UTC, datetime

from studio.ui.training_tab import few_steps_warning, follow_new_job, loss_frame, readable_log


def test_the_loss_frame_has_numeric_axes_even_when_empty():
    assert str(loss_frame([]).dtypes["step"]) == "int64"
    frame = loss_frame([{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.0, "eval_loss": 2.2}])
    assert list(frame["step"]) == [1, 2, 2] and str(frame["value"].dtype) == "float64"


def test_the_log_hides_library_warnings_but_keeps_the_story():
    log = ("step 10 loss 2.3\n"
           "/x/site-packages/trl/trainer.py:12: UserWarning: loss_type=None was given\n"
           "  warnings.warn(\n"
           "done in 0.3s, perplexity 1048.70 → 829.20")
    assert readable_log(log) == "step 10 loss 2.3\ndone in 0.3s, perplexity 1048.70 → 829.20"


def test_a_run_of_few_steps_is_flagged():
    assert "Only 3 optimizer steps" in few_steps_warning({"total_steps": 3})
    assert few_steps_warning({"total_steps": 500}) == "" and few_steps_warning({"total_steps": 0}) == ""


def test_a_just_started_job_takes_the_view_from_a_finished_one_but_not_later():
    jobs = [{"id": "new", "status": "queued", "created_at": "2026-12-01T20:00:00.000Z"},
            {"id": "old", "status": "completed", "created_at": "2026-12-01T19:00:00.000Z"}]
    assert follow_new_job(jobs, "old", datetime(2026, 12, 1, 20, 0, 5, tzinfo=UTC)) == "new"
    assert follow_new_job(jobs, "old", datetime(2026, 12, 1, 20, 5, 0, tzinfo=UTC)) == "old"  # a person's pick stays
    jobs[1]["status"] = "running"
    assert follow_new_job(jobs, "old", datetime(2026, 12, 1, 20, 0, 5, tzinfo=UTC)) == "old"
