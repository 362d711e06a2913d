"""Parse DeepSeek tool-call output into OpenAI-style tool calls, whole or streamed.

The model writes (markers are single tokens, decoded as their text) one of two call formats:

    DeepSeek-V3 / V3-0324 / R1:
    [content]<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
    ```json
    {ARGS}
    ```<｜tool▁call▁end｜>
    <｜tool▁call▁begin｜>...<｜tool▁call▁end｜><｜tool▁calls▁end｜>

    DeepSeek-V3.1:
    [content]<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{ARGS}<｜tool▁call▁end｜><｜tool▁call▁begin｜>...<｜tool▁calls▁end｜>

Both are always accepted (a checkpoint's family need not be known to parse its output).

Rules, shared by `parse_tool_calls` (whole text) and `ToolCallStreamParser` (chunks):
- Text outside a `<｜tool▁calls▁begin｜>`...`<｜tool▁calls▁end｜>` section is content.
- Inside a section, whitespace between calls is dropped. A section left open at the end of the
  text is accepted (generation stopped right after the last call).
- A call body is read as V3 when it is `function<｜tool▁sep｜>NAME`, a newline, then the arguments
  (optionally inside a ```json fence); otherwise as V3.1, `NAME<｜tool▁sep｜>ARGS`. The call is
  well-formed when the arguments are one JSON object (no NaN or Infinity), NAME matches
  `[A-Za-z0-9_-]{1,64}` and, when a list of tool names is given, is in it. Arguments are
  re-serialised compactly (`json.dumps`, non-ASCII kept).
- Anything else is returned verbatim as content, markers included: a malformed call (from its
  `<｜tool▁call▁begin｜>` to its `<｜tool▁call▁end｜>`), a call with no end marker (from its
  begin marker, with the whitespace before it, to the end of the text), and any other text
  inside a section (up to the next call or section marker). The stream parser also records
  each of these as a `ToolCallError` in `errors`, with the reason.
Nothing here raises on model output.
"""
from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass

CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
TOOL_SEP = "<｜tool▁sep｜>"
MARKERS = (CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, TOOL_SEP)

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
FENCE_PATTERN = re.compile(r"```[A-Za-z]*[ \t]*\n(?P<json>.*?)\n?[ \t]*```", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    """One parsed call; `arguments` is a JSON object serialised as a string (OpenAI's form)."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict:
        """The call as an entry of an OpenAI `tool_calls` list."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ContentDelta:
    """Stream event: more content text."""

    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    """Stream event: one complete tool call; `index` counts calls from 0 (OpenAI delta index)."""

    index: int
    call: ToolCall


@dataclass(frozen=True)
class ToolCallError:
    """A piece of section text that is not a valid call; it was returned as content."""

    raw: str
    reason: str


class MalformedToolCall(ValueError):
    """Why `parse_call_body` rejected a call body; the parsers turn it into content."""


Event = ContentDelta | ToolCallEvent
CallIdFactory = Callable[[int], str]


def random_call_id(index: int) -> str:
    """OpenAI-like call id, unique per call."""
    return f"call_{secrets.token_hex(12)}"


def _reject_constant(name: str) -> float:
    raise MalformedToolCall(f"arguments contain {name}, which is not JSON")


def parse_call_body(body: str, tool_names: Collection[str] | None = None) -> tuple[str, str]:
    """(name, arguments JSON) of the text between `<｜tool▁call▁begin｜>` and `<｜tool▁call▁end｜>`.

    Raises MalformedToolCall with the reason when the body is not a valid call.
    """
    if any(marker in body for marker in MARKERS if marker != TOOL_SEP):
        raise MalformedToolCall("a tool-call marker appears inside the call")
    if TOOL_SEP not in body:
        raise MalformedToolCall("no <｜tool▁sep｜> in the call")
    head, rest = body.split(TOOL_SEP, 1)
    v3_name, newline, v3_arguments = rest.partition("\n")
    if head.strip() == "function" and newline and NAME_PATTERN.fullmatch(v3_name.strip()):
        name, arguments = v3_name.strip(), v3_arguments  # V3: function<sep>NAME\n```json\n{...}\n```
    else:
        name, arguments = head.strip(), rest  # V3.1: NAME<sep>{...}
    if not NAME_PATTERN.fullmatch(name):
        raise MalformedToolCall(f"invalid tool name {name!r:.80}")
    if tool_names is not None and name not in tool_names:
        raise MalformedToolCall(f"unknown tool {name!r}")
    if not arguments.strip():
        raise MalformedToolCall("no arguments after the tool name")
    fenced = FENCE_PATTERN.fullmatch(arguments.strip())
    arguments = fenced.group("json") if fenced else arguments
    try:
        value = json.loads(arguments, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedToolCall(f"arguments are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedToolCall("arguments must be a JSON object")
    return name, json.dumps(value, ensure_ascii=False)


def parse_tool_calls(
    text: str,
    tool_names: Collection[str] | None = None,
    call_id: CallIdFactory = random_call_id,
) -> tuple[str, list[ToolCall]]:
    """(content, tool calls) of a whole model output, by the rules in the module docstring."""
    content: list[str] = []
    calls: list[ToolCall] = []
    pos = 0
    while pos < len(text):
        start = text.find(CALLS_BEGIN, pos)
        if start < 0:
            content.append(text[pos:])
            break
        content.append(text[pos:start])
        pos = start + len(CALLS_BEGIN)
        while True:  # inside a section; `pos` is before any whitespace
            item = len(text) - len(text[pos:].lstrip())
            if item == len(text):
                pos = item
                break
            if text.startswith(CALLS_END, item):
                pos = item + len(CALLS_END)
                break
            if text.startswith(CALL_BEGIN, item):
                end = text.find(CALL_END, item + len(CALL_BEGIN))
                if end < 0:
                    content.append(text[pos:])
                    pos = len(text)
                    break
                body = text[item + len(CALL_BEGIN) : end]
                try:
                    name, arguments = parse_call_body(body, tool_names)
                    calls.append(ToolCall(call_id(len(calls)), name, arguments))
                except MalformedToolCall:
                    content.append(text[item : end + len(CALL_END)])
                pos = end + len(CALL_END)
                continue
            following = [i for i in (text.find(CALL_BEGIN, item), text.find(CALLS_END, item)) if i >= 0]
            stray_end = min(following, default=len(text))
            content.append(text[pos:stray_end])
            pos = stray_end
    return "".join(content), calls


def _partial_marker_length(text: str, markers: tuple[str, ...]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `markers`."""
    for length in range(min(len(text), max(map(len, markers)) - 1), 0, -1):
        suffix = text[-length:]
        if any(marker.startswith(suffix) for marker in markers):
            return length
    return 0


class ToolCallStreamParser:
    """Incremental twin of `parse_tool_calls`: feed text deltas, get content and whole calls.

    Events are `ContentDelta` (text to stream as content now) and `ToolCallEvent` (one complete
    call, emitted as soon as its `<｜tool▁call▁end｜>` arrives; arguments are never split). The
    concatenated content and the list of calls equal `parse_tool_calls` on the concatenated input,
    however the input is chunked. Text that may be the start of a marker is held back until the
    next delta or `finish()`.
    """

    _CONTENT, _SECTION, _STRAY = "content", "section", "stray"

    def __init__(self, tool_names: Collection[str] | None = None, call_id: CallIdFactory = random_call_id) -> None:
        self._tool_names = tool_names
        self._call_id = call_id
        self._state = self._CONTENT
        self._buffer = ""
        self._calls = 0
        self._finished = False
        self.errors: list[ToolCallError] = []

    def feed(self, delta: str) -> list[Event]:
        """Consume the next piece of model output; return the events it completes."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        self._buffer += delta
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def finish(self) -> list[Event]:
        """End of output: flush held text, turning an unfinished call into content."""
        events: list[Event] = []
        if self._finished:
            return events
        self._finished = True
        rest, self._buffer = self._buffer, ""
        if self._state == self._STRAY:
            self._stray(events, rest)
        elif self._state == self._CONTENT:
            self._emit(events, rest)
        elif rest.strip():
            self.errors.append(ToolCallError(rest, "tool call not finished"))
            self._emit(events, rest)
        return events

    def _stray(self, events: list[Event], text: str) -> None:
        """Return stray section text as content and add it to the open stray-text error."""
        if text:
            self.errors[-1] = ToolCallError(self.errors[-1].raw + text, self.errors[-1].reason)
            events.append(ContentDelta(text))

    def _emit(self, events: list[Event], text: str) -> None:
        if text:
            events.append(ContentDelta(text))

    def _step(self, events: list[Event]) -> bool:
        """Process the buffer as far as it is decided; True when another step may progress."""
        buffer = self._buffer
        if self._state == self._CONTENT:
            start = buffer.find(CALLS_BEGIN)
            if start >= 0:
                self._emit(events, buffer[:start])
                self._buffer, self._state = buffer[start + len(CALLS_BEGIN) :], self._SECTION
                return True
            keep = _partial_marker_length(buffer, (CALLS_BEGIN,))
            self._emit(events, buffer[: len(buffer) - keep])
            self._buffer = buffer[len(buffer) - keep :]
            return False
        if self._state == self._STRAY:
            following = [i for i in (buffer.find(CALL_BEGIN), buffer.find(CALLS_END)) if i >= 0]
            if following:
                self._stray(events, buffer[: min(following)])
                self._buffer, self._state = buffer[min(following) :], self._SECTION
                return True
            keep = _partial_marker_length(buffer, (CALL_BEGIN, CALLS_END))
            self._stray(events, buffer[: len(buffer) - keep])
            self._buffer = buffer[len(buffer) - keep :]
            return False
        item_text = buffer.lstrip()
        if not item_text or any(m.startswith(item_text) and m != item_text for m in (CALLS_END, CALL_BEGIN)):
            return False  # only whitespace, or a marker still arriving
        if item_text.startswith(CALLS_END):
            self._buffer, self._state = item_text[len(CALLS_END) :], self._CONTENT
            return True
        if item_text.startswith(CALL_BEGIN):
            end = item_text.find(CALL_END, len(CALL_BEGIN))
            if end < 0:
                return False
            raw = item_text[: end + len(CALL_END)]
            try:
                name, arguments = parse_call_body(raw[len(CALL_BEGIN) : -len(CALL_END)], self._tool_names)
                events.append(ToolCallEvent(self._calls, ToolCall(self._call_id(self._calls), name, arguments)))
                self._calls += 1
            except MalformedToolCall as exc:
                self.errors.append(ToolCallError(raw, str(exc)))
                self._emit(events, raw)
            self._buffer = item_text[end + len(CALL_END) :]
            return True
        self._state = self._STRAY  # the whitespace before stray text is part of it
        self.errors.append(ToolCallError("", "text inside a tool-call section"))
        return True
