"""Parse and validate Telegram's HTML parse mode the way tdlib does.

The messages and byte offsets follow tdlib's ``parse_html`` so that a bot under test sees
the same ``Bad Request: can't parse entities: ...`` texts it would see from Telegram.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ALLOWED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)

_SIMPLE_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}

_USER_LINK = re.compile(r"^tg://user\?id=(\d{1,16})$")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(rb"&(#x[0-9a-fA-F]{1,8}|#[0-9]{1,10}|[a-zA-Z]{1,10});")
_SPACE = b" \t\r\n\f\v"


class HtmlParseError(ValueError):
    """Report why Telegram would refuse this HTML, in tdlib's words."""


@dataclass
class ParsedText:
    """Hold the plain text and the entities that parsing HTML produced."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Count UTF-16 code units, the unit of Telegram's length limits and offsets."""
    return len(text.encode("utf-16-le")) // 2


def _decode_entity(data: bytes, i: int) -> tuple[str, int] | None:
    """Decode an HTML entity at ``data[i]`` (an ``&``); return the char and the next index."""
    match = _ENTITY_RE.match(data, i)
    if match is None:
        return None
    name = match.group(1).decode("ascii")
    if name.startswith("#x"):
        code = int(name[2:], 16)
    elif name.startswith("#"):
        code = int(name[1:])
    elif name in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[name], match.end()
    else:
        return None
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


@dataclass
class _Open:
    tag: str
    argument: str
    utf16_offset: int
    begin_pos: int


def parse_html(source: str) -> ParsedText:
    """Turn Telegram HTML into plain text and entities, or raise ``HtmlParseError``."""
    data = source.encode("utf-8")
    n = len(data)
    out: list[str] = []
    utf16_offset = 0
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    i = 0
    plain_start = 0

    def flush(end: int) -> None:
        nonlocal utf16_offset
        if end > plain_start:
            chunk = data[plain_start:end].decode("utf-8", errors="replace")
            out.append(chunk)
            utf16_offset += utf16_len(chunk)

    while i < n:
        c = data[i]
        if c == 0x26:  # '&'
            decoded = _decode_entity(data, i)
            if decoded is not None:
                flush(i)
                out.append(decoded[0])
                utf16_offset += utf16_len(decoded[0])
                i = decoded[1]
                plain_start = i
                continue
            i += 1
            continue
        if c != 0x3C:  # '<'
            i += 1
            continue
        flush(i)
        begin_pos = i
        i += 1
        if i < n and data[i] != 0x2F:  # start tag
            while i < n and data[i] not in _SPACE and data[i] != 0x3E:
                i += 1
            if i >= n:
                raise HtmlParseError(f"Unclosed start tag at byte offset {begin_pos}")
            tag = data[begin_pos + 1 : i].decode("utf-8", errors="replace").lower()
            if tag not in ALLOWED_TAGS:
                raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {begin_pos}')
            argument = ""
            while i < n and data[i] != 0x3E:
                while i < n and data[i] in _SPACE:
                    i += 1
                if i < n and data[i] == 0x3E:
                    break
                attr_begin = i
                while i < n and data[i] not in _SPACE and data[i] not in (0x3D, 0x3E):
                    i += 1
                attr_name = data[attr_begin:i].decode("utf-8", errors="replace").lower()
                if not attr_name:
                    raise HtmlParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin_pos}'
                    )
                while i < n and data[i] in _SPACE:
                    i += 1
                if i >= n:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {begin_pos}")
                if data[i] != 0x3D:  # attribute without a value
                    if tag == "blockquote" and attr_name == "expandable":
                        argument = "1"
                    continue
                i += 1
                while i < n and data[i] in _SPACE:
                    i += 1
                if i >= n:
                    raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {begin_pos}')
                value_chars: list[str] = []
                if data[i] not in (0x22, 0x27):
                    token_begin = i
                    while i < n and (
                        (chr(data[i]).isalnum() and data[i] < 0x80) or data[i] in b".-"
                    ):
                        i += 1
                    value = data[token_begin:i].decode("ascii").lower()
                    if i < n and data[i] not in _SPACE and data[i] != 0x3E:
                        raise HtmlParseError(
                            f"Unexpected end of name token at byte offset {token_begin}"
                        )
                else:
                    quote = data[i]
                    i += 1
                    raw_begin = i
                    while i < n and data[i] != quote:
                        if data[i] == 0x26:
                            decoded = _decode_entity(data, i)
                            if decoded is not None:
                                value_chars.append(data[raw_begin:i].decode("utf-8", "replace"))
                                value_chars.append(decoded[0])
                                i = decoded[1]
                                raw_begin = i
                                continue
                        i += 1
                    value_chars.append(data[raw_begin:i].decode("utf-8", "replace"))
                    value = "".join(value_chars)
                    if i < n:
                        i += 1
                if i >= n:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {begin_pos}")
                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr_name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attr_name == "expandable":
                    argument = "1"
            if tag == "span" and argument != "spoiler":
                raise HtmlParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {begin_pos}'
                )
            stack.append(_Open(tag, argument, utf16_offset, begin_pos))
        else:  # end tag
            if not stack:
                raise HtmlParseError(f"Unexpected end tag at byte offset {begin_pos}")
            i += 1
            name_begin = i
            while i < n and data[i] not in _SPACE and data[i] != 0x3E:
                i += 1
            end_name = data[name_begin:i].decode("utf-8", errors="replace").lower()
            while i < n and data[i] in _SPACE:
                i += 1
            if i >= n or data[i] != 0x3E:
                raise HtmlParseError(f"Unclosed end tag at byte offset {begin_pos}")
            top = stack[-1]
            if end_name and end_name != top.tag:
                raise HtmlParseError(
                    f"Unmatched end tag at byte offset {begin_pos}, "
                    f'expected "</{top.tag}>", found "</{end_name}>"'
                )
            stack.pop()
            _close(top, utf16_offset, stack, entities)
        i += 1  # past '>'
        plain_start = i
    flush(n)
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(out), entities)


def _close(top: _Open, end_offset: int, stack: list[_Open], entities: list[dict[str, Any]]) -> None:
    """Turn a closed tag into its entity, as tdlib does (empty entities vanish)."""
    length = end_offset - top.utf16_offset
    if length <= 0:
        return
    entity: dict[str, Any] = {"offset": top.utf16_offset, "length": length}
    if top.tag in _SIMPLE_TYPES:
        entity["type"] = _SIMPLE_TYPES[top.tag]
    elif top.tag == "a":
        if not top.argument:
            return  # tdlib drops links without href
        mention = _USER_LINK.match(top.argument)
        if mention is not None:
            # Telegram turns a link to a user into a mention of that user.
            entity["type"] = "text_mention"
            entity["user"] = {"id": int(mention[1]), "is_bot": False, "first_name": mention[1]}
        else:
            entity["type"] = "text_link"
            entity["url"] = top.argument
    elif top.tag == "tg-emoji":
        if not top.argument:
            return
        entity["type"] = "custom_emoji"
        entity["custom_emoji_id"] = top.argument
    elif top.tag == "blockquote":
        entity["type"] = "expandable_blockquote" if top.argument else "blockquote"
    elif top.tag == "code":
        if stack and stack[-1].tag == "pre" and stack[-1].utf16_offset == top.utf16_offset:
            # <pre><code class="language-x"> becomes one pre entity with a language.
            stack[-1].argument = stack[-1].argument or top.argument or "\0"
            return
        entity["type"] = "code"
    elif top.tag == "pre":
        entity["type"] = "pre"
        if top.argument and top.argument != "\0":
            entity["language"] = top.argument
    entities.append(entity)


def strip_text(parsed: ParsedText) -> ParsedText:
    """Trim leading and trailing whitespace as Telegram does, keeping entities aligned."""
    text = parsed.text
    stripped_left = text.lstrip()
    lead = utf16_len(text) - utf16_len(stripped_left)
    stripped = stripped_left.rstrip()
    total = utf16_len(stripped)
    entities: list[dict[str, Any]] = []
    for entity in parsed.entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return ParsedText(stripped, entities)
