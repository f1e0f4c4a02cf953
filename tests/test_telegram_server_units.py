"""Pure tests of the fake Telegram's HTML parser and leaky buckets."""

from __future__ import annotations

import pytest

from tests.servers.telegram.flood import FloodControl, FloodLimits, LeakyBucket
from tests.servers.telegram.html import HtmlParseError, parse_html, strip_text, utf16_len


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("source", "text", "entities"),
    [
        ("plain", "plain", []),
        ("<b>bold</b> rest", "bold rest", [{"type": "bold", "offset": 0, "length": 4}]),
        ("a &lt;b&gt; &amp; &quot;q&quot;", 'a <b> & "q"', []),
        ("&#65;&#x42;", "AB", []),
        ("AT&T & co", "AT&T & co", []),
        ("&nbsp;x", "&nbsp;x", []),
        (
            '<a href="https://wandb.ai/x?a=1&amp;b=2">run</a>',
            "run",
            [{"type": "text_link", "offset": 0, "length": 3, "url": "https://wandb.ai/x?a=1&b=2"}],
        ),
        (
            '<pre><code class="language-python">x = 1</code></pre>',
            "x = 1",
            [{"type": "pre", "offset": 0, "length": 5, "language": "python"}],
        ),
        ("<code>c</code>", "c", [{"type": "code", "offset": 0, "length": 1}]),
        ('<span class="tg-spoiler">s</span>', "s", [{"type": "spoiler", "offset": 0, "length": 1}]),
        (
            "<blockquote expandable>q</blockquote>",
            "q",
            [{"type": "expandable_blockquote", "offset": 0, "length": 1}],
        ),
        ("😀<i>x</i>", "😀x", [{"type": "italic", "offset": 2, "length": 1}]),
        ("<B>up</B>", "up", [{"type": "bold", "offset": 0, "length": 2}]),
        ("<b></b>x", "x", []),
        ("<b>a</>", "a", [{"type": "bold", "offset": 0, "length": 1}]),
    ],
)
def test_parse_html_gives_text_and_entities(source, text, entities):
    parsed = parse_html(source)
    assert parsed.text == text
    assert parsed.entities == entities


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("line<br>next", 'Unsupported start tag "br" at byte offset 4'),
        ("é<br/>", 'Unsupported start tag "br/" at byte offset 2'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("x <b", "Unclosed start tag at byte offset 2"),
        (
            "<b>x</i>",
            'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
        ),
        ("<b>never closed", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
def test_parse_html_refuses_like_tdlib(source, error):
    with pytest.raises(HtmlParseError) as info:
        parse_html(source)
    assert str(info.value) == error


def test_utf16_len_counts_surrogate_pairs():
    assert utf16_len("a😀é") == 4


def test_strip_text_trims_and_shifts_entities():
    parsed = strip_text(parse_html("  <b>hi</b> \n"))
    assert parsed.text == "hi"
    assert parsed.entities == [{"type": "bold", "offset": 0, "length": 2}]


def test_leaky_bucket_admits_burst_then_leaks_at_rate():
    clock = FakeClock()
    bucket = LeakyBucket(capacity=3, rate=1.0, clock=clock)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire() == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.try_acquire() == pytest.approx(0.5)  # refused units do not fill it
    clock.now += 0.5
    assert bucket.try_acquire() == 0.0
    clock.now += 10
    assert bucket.level == pytest.approx(3.0)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_flood_control_group_bucket_refuses_the_21st_message_a_minute():
    clock = FakeClock()
    flood = FloodControl(FloodLimits(chat_rate=100, chat_burst=100), clock)
    waits = []
    for _ in range(25):
        waits.append(flood.check(-42))
        clock.now += 0.05
    assert waits[:20] == [0.0] * 20
    assert all(w > 0 for w in waits[20:])
    assert waits[20] == pytest.approx(2.0)  # 1 s elapsed: 1/3 leaked, 2/3 to go at 1/3 per s
    clock.now += 3.0  # one slot leaks out every 3 s
    assert flood.check(-42) == 0.0


def test_flood_control_private_chat_is_one_per_second_after_burst():
    clock = FakeClock()
    flood = FloodControl(FloodLimits(), clock)
    assert [flood.check(5) for _ in range(3)] == [0.0] * 3
    assert flood.check(5) == pytest.approx(1.0)
    assert flood.check(6) == 0.0  # other chats have their own bucket
    clock.now += 1.0
    assert flood.check(5) == 0.0


def test_flood_control_overall_limit_spans_chats():
    clock = FakeClock()
    flood = FloodControl(FloodLimits(overall_rate=30, overall_burst=30), clock)
    assert all(flood.check(chat) == 0.0 for chat in range(1, 31))
    assert flood.check(99) == pytest.approx(1 / 30)
