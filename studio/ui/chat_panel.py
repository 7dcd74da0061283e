"""The Text tab's chat view: a conversation with the model (its chat template; a plain "User: /
Assistant:" transcript for models without one), streamed replies, regenerate / continue / edit last /
clear, and a thumb on every reply; and the `/chat` endpoint for Gradio API clients.

Each reply is an output (`studio.text.chat`) whose prompt is the rendered conversation, so it is
rated, found and exported like any completion."""

from __future__ import annotations

import threading
from collections.abc import Callable

import gradio as gr
from pydantic import ValidationError

from studio.services import Studio
from studio.services.text import ChatMessage, TextGenerateParams
from studio.ui.common import (
    api_endpoint,
    save_rating,
    saved_note,
    shows_errors,
    stop_button,
    stream_in_thread,
    user_for,
)

Turn = dict  # {"role": "user" | "assistant", "content": str}, as the Chatbot shows it


def conversation(system: str | None, turns: list[Turn]) -> list[ChatMessage]:
    """What the model is asked to answer: the system prompt (if any), then the turns."""
    head = [ChatMessage(role="system", content=system.strip())] if (system or "").strip() else []
    return head + [ChatMessage(role=t["role"], content=t["content"]) for t in turns]


def reply_note(value: dict) -> str:
    out = value["outputs"][0]
    note = f"Reply from `{value['model']}`" + (f" + adapter `{value['adapter']}`" if value["adapter"] else "")
    note += f" · seed {out['seed']} · {out['new_tokens']} tokens · {value['elapsed_s']:.2f} s"
    if value["stopped"]:
        note += " · stopped"
    if value.get("random_weights"):
        note += " · *starter model: random weights, expect gibberish until trained*"
    for w in value["warnings"]:
        note += f"\n\n⚠️ {w}"
    return note


def build(studio: Studio, controls: dict[str, gr.components.Component], *,
          api_inputs: dict[str, gr.components.Component], params: Callable[..., TextGenerateParams]) -> None:
    """Lays the view out where it is called. `controls`: the Text tab's model, adapter and sampling
    components by parameter name; `api_inputs`: the same for API clients; `params`: the tab's
    form → TextGenerateParams."""
    turns_state = gr.State([])  # the conversation without the system prompt: list of Turn
    reply_ids = gr.State([])  # the output id of each assistant turn, in order
    stop_state = gr.State(None)  # this session's stop event
    system = gr.Textbox("", label="System prompt", lines=2, placeholder="You are a friendly storyteller.",
                        elem_id="chat-system")
    chatbot = gr.Chatbot(label="Conversation", height=420, elem_id="chat-bot",
                         placeholder="Send a message to start. Rate any reply with its thumbs.")
    message = gr.Textbox(label="Message", lines=2, placeholder="Say something", elem_id="chat-message")
    with gr.Row():
        send = gr.Button("Send", variant="primary", elem_id="chat-send")
        stop = gr.Button("Stop", variant="stop", elem_id="chat-stop")
    with gr.Row():
        regenerate = gr.Button("Regenerate", size="sm", elem_id="chat-regenerate")
        extend = gr.Button("Continue", size="sm", elem_id="chat-continue")
        edit_last = gr.Button("Edit last", size="sm", elem_id="chat-edit-last")
        clear = gr.Button("Clear", size="sm", elem_id="chat-clear")
    status = gr.Markdown(elem_id="chat-status")

    def respond(mode: str, text: str, turns: list[Turn], ids: list[str], system_prompt: str,
                request: gr.Request, values: dict):
        """send: a new user turn and its reply · regenerate: the last reply again · continue: the last
        reply made longer. The states change only once the reply is stored."""
        user = user_for(studio, request)
        p = params(**values)  # one reply; the completion view's variations and stop lines do not apply
        has_reply = bool(turns) and turns[-1]["role"] == "assistant"
        if mode == "send":
            if not (text or "").strip():
                raise gr.Error("Type a message first.")
            base, kept_ids, start = [*turns, {"role": "user", "content": text}], ids, ""
        elif not has_reply:
            raise gr.Error("Send a message first: there is no reply to " + mode + ".")
        else:
            base, kept_ids = turns[:-1], ids[:-1]
            start = turns[-1]["content"] if mode == "continue" else ""
        messages = conversation(system_prompt, base + ([turns[-1]] if mode == "continue" else []))
        studio.text.check(p, user=user)  # over the limits: fail before the page says "Generating…"

        def shown(new_text: str) -> list[Turn]:
            # A transcript model starts its reply after "Assistant:" with a space; a continuation
            # keeps its own spacing.
            return [*base, {"role": "assistant", "content": (start + new_text) if start else new_text.strip()}]

        stop_event = threading.Event()
        yield {chatbot: shown(""), message: "" if mode == "send" else gr.skip(), status: "Generating…",
               stop_state: stop_event}
        try:
            value = yield from stream_in_thread(
                lambda report: studio.text.chat(messages, p, user=user, on_text=report, stop_event=stop_event,
                                                continue_final=mode == "continue"),
                lambda partial: {chatbot: shown(partial[0] if partial else "")},
            )
        except Exception:
            # Put the page back as it was, the unsent message included.
            yield {chatbot: turns, message: text if mode == "send" else gr.skip(), status: "", stop_state: None}
            raise
        final = shown(value["outputs"][0]["text"])
        final[-1]["content"] = final[-1]["content"].rstrip()
        yield {chatbot: final, turns_state: final, reply_ids: [*kept_ids, value["outputs"][0]["id"]],
               status: reply_note(value), stop_state: None}

    @shows_errors
    def send_message(text, turns, ids, system_prompt, request: gr.Request, **values):
        yield from respond("send", text, turns, ids, system_prompt, request, values)

    @shows_errors
    def regenerate_reply(text, turns, ids, system_prompt, request: gr.Request, **values):
        yield from respond("regenerate", text, turns, ids, system_prompt, request, values)

    @shows_errors
    def continue_reply(text, turns, ids, system_prompt, request: gr.Request, **values):
        yield from respond("continue", text, turns, ids, system_prompt, request, values)

    form = {"text": message, "turns": turns_state, "ids": reply_ids, "system_prompt": system, **controls}
    outputs = [chatbot, message, status, stop_state, turns_state, reply_ids]
    gr.on([send.click, message.submit], send_message, inputs_kwargs=form, outputs=outputs, concurrency_id="text",
          api_visibility="private")
    regenerate.click(regenerate_reply, inputs_kwargs=form, outputs=outputs, concurrency_id="text",
                     api_visibility="private")
    extend.click(continue_reply, inputs_kwargs=form, outputs=outputs, concurrency_id="text",
                 api_visibility="private")

    stop_button(stop, stop_state, status)

    @shows_errors
    def on_edit_last(turns: list[Turn], ids: list[str]):
        """The last user message back in the box; it and everything after it leave the conversation."""
        last_user = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=None)
        if last_user is None:
            raise gr.Error("There is no message to edit yet.")
        kept = turns[:last_user]
        replies = sum(t["role"] == "assistant" for t in kept)
        return kept, kept, ids[:replies], turns[last_user]["content"], ""

    conversation_so_far = {"turns": turns_state, "ids": reply_ids}
    edit_last.click(on_edit_last, inputs_kwargs=conversation_so_far,
                    outputs=[chatbot, turns_state, reply_ids, message, status], api_visibility="private")
    clear.click(lambda: ([], [], [], ""), outputs=[chatbot, turns_state, reply_ids, status],
                api_visibility="private")
    # The chatbot's own bin icon empties the view; the conversation goes with it.
    chatbot.clear(lambda: ([], [], ""), outputs=[turns_state, reply_ids, status], api_visibility="private")

    @shows_errors
    def on_like(turns: list[Turn], ids: list[str], evt: gr.LikeData, request: gr.Request):
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not isinstance(index, int) or index >= len(turns) or turns[index]["role"] != "assistant":
            raise gr.Error("Rate a finished reply of the model.")
        nth = sum(t["role"] == "assistant" for t in turns[:index])  # which reply: its id's place
        # The chatbot sends liked=True / False for the two thumbs, and "" when a thumb is taken back.
        rating = "up" if evt.liked is True else "down" if evt.liked is False else None
        save_rating(studio, request, ids[nth] if nth < len(ids) else None, rating, missing="This reply is not stored.")
        return saved_note(rating)

    chatbot.like(on_like, inputs_kwargs=conversation_so_far, outputs=[status], api_visibility="private")

    # -- for API clients ---------------------------------------------------------------------------
    api_history = gr.JSON([], visible=False, label='Earlier turns: [{"role": "user"|"assistant", "content": str}]')
    api_reply = gr.Textbox(visible=False, label="Reply")
    api_result = gr.JSON(visible=False, label="Result (the output with its id, and `messages`: the conversation)")

    @shows_errors
    def chat(request: gr.Request, **values):
        """Send one message in a conversation and get the model's reply, through the same service
        (limits and queue) as the Chat view, streaming the reply while it grows. `history`: the earlier
        turns, e.g. the `messages` of the previous answer; `system_prompt` is optional. Returns the
        reply and the answer: the stored output (its id for /rate), the model used, and `messages`,
        the conversation including this exchange."""
        user = user_for(studio, request)
        text, history, system_prompt = values.pop("message"), values.pop("history"), values.pop("system_prompt")
        if not (text or "").strip():
            raise gr.Error("message: type something to send.")
        try:
            turns = [ChatMessage.model_validate(t).model_dump() for t in history or []]
        except (ValidationError, TypeError) as exc:
            raise gr.Error(f'history: a list of {{"role", "content"}} turns, please ({exc})') from exc
        turns.append({"role": "user", "content": text})
        p = params(**values)
        value = yield from stream_in_thread(
            lambda report: studio.text.chat(conversation(system_prompt, turns), p, user=user, on_text=report),
            lambda partial: ((partial[0] if partial else "").strip(), None),
        )
        reply = value["outputs"][0]["text"].strip()
        yield reply, value | {"messages": [*turns, {"role": "assistant", "content": reply}]}

    api_endpoint(chat, api_name="chat", concurrency_id="text", outputs=[api_reply, api_result],
                 inputs={"message": message, "history": api_history, "system_prompt": system, **api_inputs})
