"""Speech tab: text in, a clip out (waveform, download, thumbs), with model / language / voice pickers,
speed, variability and seed, a progress bar while long text is spoken sentence by sentence, and the
history of earlier clips with their ratings; and the `/generate_speech` endpoint for Gradio API
clients. Thin: every rule lives in `SpeechService`."""

from __future__ import annotations

import html

import gradio as gr

from studio.services import Studio
from studio.services.speech import SpeechGenerateParams
from studio.ui.common import (
    RATING_MARKS,
    api_endpoint,
    api_id_input,
    rate_buttons,
    share,
    shows_errors,
    user_for,
)

LANGUAGE_NAMES = {"eng": "English", "fra": "French", "deu": "German", "spa": "Spanish"}
HISTORY_HEADERS = ["created", "text", "model", "seconds", "rating", "id"]
DEFAULT_VARIABILITY = 0.667  # VITS / MMS-TTS's own noise scale
DEFAULT_PITCH = 50  # espeak-ng's own pitch (0–100)
TEXT_CELL_CHARS = 80


# -- what the events show (plain functions: tests can call them without a browser) ----------------
def model_choices(studio: Studio) -> tuple[list[str], str | None]:
    listing = studio.models.list_models()["speech"]
    default = next((m["id"] for m in listing if m["default"]), None)
    return [m["id"] for m in listing], default


def language_choices(studio: Studio) -> list[tuple[str, str]]:
    """(label, model id) for each MMS-TTS language model that can be used now."""
    from engines.speech import language_of

    choices = []
    for model_id in model_choices(studio)[0]:
        code = language_of(model_id)
        if "mms-tts-" in model_id and code:
            choices.append((f"{LANGUAGE_NAMES.get(code, code)} ({code})", model_id))
    return choices


def history_rows(studio: Studio, user: str) -> list[list]:
    rows = []
    for o in studio.outputs.recent("speech", limit=50, user=user, owner=user):  # one's own clips only
        text = o["prompt"] if len(o["prompt"]) <= TEXT_CELL_CHARS else o["prompt"][: TEXT_CELL_CHARS - 1] + "…"
        rows.append([o["created_at"][:19].replace("T", " "), text, o["model"],
                     o["params"].get("duration_s"), RATING_MARKS.get(o["rating"] or "", ""), o["id"]])
    return rows


def describe_result(value: dict) -> str:
    out = value["outputs"][0]
    note = (f"{out['duration_s']:.1f} s from `{value['model']}` · {out['sample_rate']:,} Hz · seed {out['seed']} · "
            f"{value['chunks']} chunk(s) · {value['elapsed_s']:.2f} s")
    if value.get("random_weights"):
        note += " · *starter model: random weights, it babbles until trained*"
    if value["model"] == "starter/espeak-ng":
        note += " · *espeak-ng: classic formant synthesis, not neural*"
    if value.get("spoken_as"):
        note += f"\n\nSpoken as: “{html.escape(value['spoken_as'])}”"
    for w in value["warnings"]:
        note += f"\n\n⚠️ {w}"
    return note


def speech_params(*, text: str | None = "", model: str | None = None, voice: str | None = None, speed=1.0,
                  noise_scale=None, seed=None, format: str | None = "wav", pitch=None) -> SpeechGenerateParams:
    """The form's values, as the page and API clients send them, as the service's parameters."""
    if not (text or "").strip():
        raise gr.Error("Type some text to speak.")
    try:
        return SpeechGenerateParams(
            text=text or "", model=model or None, voice=voice or None, speed=float(speed),
            noise_scale=float(noise_scale) if noise_scale is not None else None,
            pitch=float(pitch) if pitch is not None else None,
            seed=None if seed in (None, "") or int(seed) < 0 else int(seed), format=format or "wav",
        )
    except Exception as exc:  # pydantic or a None from an API client: show the field, not a trace
        raise gr.Error(f"Check the form: {exc}") from exc


def controls_for(studio: Studio, model: str | None) -> tuple[dict, dict, dict]:
    """Updates for (language, voice, variability) once `model` is picked."""
    info = studio.speech.describe(model)
    is_mms = info["model"] in {model_id for _, model_id in language_choices(studio)}
    language = gr.update(value=info["model"] if is_mms else None)
    voices = info["voices"]
    voice = gr.update(choices=voices, value=voices[0] if voices else None, interactive=bool(voices),
                      info=None if voices else "This model has a single voice.")
    variability = gr.update(interactive="noise_scale" in info["controls"])
    return language, voice, variability


def pitch_for(studio: Studio, model: str | None) -> dict:
    """The pitch slider once `model` is picked: live for espeak-ng, greyed out otherwise."""
    info = studio.speech.describe(model)
    return gr.update(interactive="pitch" in info["controls"],
                     info=info.get("label") or "Only espeak-ng has a pitch control.")


def build(studio: Studio):
    clip_state = gr.State(None)  # output id of this session's clip on show
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=6, max_length=20_000, elem_id="speech-text",
                              placeholder="Type anything: numbers, dates and prices are read out in English.")
            generate = gr.Button("Generate", variant="primary", elem_id="speech-generate")
            status = gr.Markdown(elem_id="speech-status")
            audio = gr.Audio(label="Clip", type="filepath", interactive=False, buttons=["download"],
                             waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                             elem_id="speech-audio")
            with gr.Row():
                up = gr.Button("👍 Good", size="sm", elem_id="speech-up", min_width=60)
                down = gr.Button("👎 Bad", size="sm", elem_id="speech-down", min_width=60)
                download = gr.DownloadButton("Download", size="sm", visible=False, elem_id="speech-download")
                rated = gr.Markdown(elem_id="speech-rated")
        with gr.Column(scale=2):
            model = share("speech.model", gr.Dropdown(label="Model", choices=[], elem_id="speech-model"))
            language = gr.Dropdown(label="Language (MMS-TTS)", choices=[], elem_id="speech-language",
                                   info="Picks the MMS-TTS model for that language.")
            voice = gr.Dropdown(label="Voice", choices=[], interactive=False, elem_id="speech-voice")
            speed = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="Speed", elem_id="speech-speed")
            variability = gr.Slider(0, 1.5, value=DEFAULT_VARIABILITY, step=0.01, label="Variability",
                                    info="How much the delivery varies (noise scale).", elem_id="speech-noise")
            pitch = gr.Slider(0, 100, value=DEFAULT_PITCH, step=1, label="Pitch", elem_id="speech-pitch",
                              info="espeak-ng's voice pitch (0–100).")
            seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0, minimum=-1, elem_id="speech-seed")
            fmt = gr.Radio(["wav", "flac"], value="wav", label="Format", elem_id="speech-format")
    with gr.Accordion("Earlier clips", open=True):
        history = gr.Dataframe(headers=HISTORY_HEADERS, datatype=["str", "str", "str", "number", "str", "str"],
                               interactive=False, wrap=True, label="Select a row to play it again",
                               elem_id="speech-history")
        refresh = gr.Button("Refresh", size="sm")

    @shows_errors
    def on_page_load(current, request: gr.Request):
        user = user_for(studio, request)
        choices, default = model_choices(studio)
        value = current if current in choices else default
        languages = language_choices(studio)
        lang = gr.update(choices=languages, value=value if value in {v for _, v in languages} else None,
                         interactive=bool(languages),
                         info="Picks the MMS-TTS model for that language." if languages
                         else "No MMS-TTS model is available (offline and not cached).")
        _, vc, var = controls_for(studio, value) if value else (None, gr.update(), gr.update())
        return gr.update(choices=choices, value=value), lang, vc, var, history_rows(studio, user.name)

    @shows_errors
    def on_model(m):
        if not m:
            return gr.update(), gr.update(), gr.update()
        return controls_for(studio, m)

    @shows_errors
    def on_model_pitch(m):
        return pitch_for(studio, m) if m else gr.update()

    def on_language(model_id):
        return gr.update(value=model_id) if model_id else gr.update()

    def checked(values: dict, request: gr.Request):
        """(user, params) once the form passes the service's checks (limits, model, voice)."""
        user = user_for(studio, request)
        params = speech_params(**values)
        studio.speech.check(params, user=user)
        info = studio.speech.describe(params.model)
        if "noise_scale" not in info["controls"]:
            params.noise_scale = None  # the slider is disabled for models without it
        if "pitch" not in info["controls"]:
            params.pitch = None
        return user, params

    @shows_errors
    def run(request: gr.Request, progress=gr.Progress(), **values):  # noqa: B008 - Gradio's idiom
        user, params = checked(values, request)
        loading = "" if studio.speech.is_loaded(params.model) else "Loading model… "
        progress(0, desc=f"{loading}Speaking…")

        def on_progress(done: int, total: int) -> None:
            progress((done, total), desc="Speaking", unit="chunks")

        value = studio.speech.generate(params, user=user, on_progress=on_progress)
        output_id = value["outputs"][0]["id"]
        path, _, _ = studio.outputs.file(output_id)
        return (str(path), describe_result(value), output_id, gr.update(value=str(path), visible=True), "",
                history_rows(studio, user.name))

    @shows_errors
    def play_row(rows, evt: gr.SelectData, request: gr.Request):
        """A history row back in the player (and ready to be rated again)."""
        data = rows.values.tolist() if hasattr(rows, "values") else rows
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not data or row is None or row >= len(data):
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        output_id = data[row][-1]
        path, _, _ = studio.outputs.file(output_id)
        o = studio.outputs.get(output_id, user=user_for(studio, request).name)
        note = f"Earlier clip `{output_id}` from `{o['model']}` · seed {o['seed']}"
        return (str(path), note, output_id, gr.update(value=str(path), visible=True),
                RATING_MARKS.get(o["rating"] or "", ""))

    @shows_errors
    def reload_history(request: gr.Request):
        return history_rows(studio, user_for(studio, request).name)

    form = {"text": text, "model": model, "voice": voice, "speed": speed, "noise_scale": variability, "seed": seed,
            "format": fmt, "pitch": pitch}
    generate.click(run, inputs_kwargs=form, outputs=[audio, status, clip_state, download, rated, history],
                   concurrency_id="speech", api_visibility="private")
    for rating in rate_buttons(studio, up, down, output=clip_state, note=rated, missing="Generate a clip first."):
        rating.success(reload_history, outputs=[history], api_visibility="private")  # the clip's new thumb
    history.select(play_row, inputs=[history], outputs=[audio, status, clip_state, download, rated],
                   api_visibility="private")
    refresh.click(reload_history, outputs=[history], api_visibility="private")
    model.change(on_model, inputs=[model], outputs=[language, voice, variability], api_visibility="private")
    model.change(on_model_pitch, inputs=[model], outputs=[pitch], api_visibility="private")
    language.input(on_language, inputs=[language], outputs=[model], api_visibility="private")

    # -- for API clients ---------------------------------------------------------------------------
    api_inputs = {
        "model": api_id_input(),
        "voice": api_id_input("Voice (models with voices; GET /api/v1/speech/voices)"),
    }
    api_clip = gr.Audio(type="filepath", visible=False, label="Clip")
    api_result = gr.JSON(visible=False, label="Result (as POST /api/v1/speech/generate answers)")

    @shows_errors
    def generate_speech(request: gr.Request, **values):
        """Speak a text as the page does (same limits and queue). Returns the clip (WAV or FLAC) and the
        whole answer: the output with its id (rate it with /rate), duration, sample rate and seed, the
        model used, and any warnings."""
        user, params = checked(values, request)
        value = studio.speech.generate(params, user=user)
        path, _, _ = studio.outputs.file(value["outputs"][0]["id"])
        return str(path), value

    api_endpoint(generate_speech, api_name="generate_speech", concurrency_id="speech", inputs=form | api_inputs,
                 outputs=[api_clip, api_result])
    return on_page_load, [model], [model, language, voice, variability, history]
