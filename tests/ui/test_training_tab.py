"""What the Training tab shows: a typed loss frame, a log without library noise, a few-steps warning."""

from studio.ui.training_tab import few_steps_warning, loss_frame, readable_log


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
