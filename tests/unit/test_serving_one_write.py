"""api/serving.OneWrite: a response's head goes out with the first part of its body, in one write."""
import asyncio

from neutrino.api.serving import OneWrite

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Written:
    """What a transport was asked to send, call by call."""

    def __init__(self):
        self.calls: list[tuple[str, bytes]] = []
        self.closed = False

    def write(self, data):
        self.calls.append(("write", bytes(data)))

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True


def test_head_and_body_in_one_write():
    async def run():
        t = Written()
        w = OneWrite(t, asyncio.get_running_loop())
        w.write(HEAD)
        w.write(b"{}")
        w.write(b"next")                        # anything after the body goes as it comes
        await asyncio.sleep(0)
        return t.calls
    assert asyncio.run(run()) == [("write", HEAD + b"{}"), ("write", b"next")]


def test_a_head_alone_goes_at_the_next_turn_and_before_a_close():
    async def run():
        t = Written()
        w = OneWrite(t, asyncio.get_running_loop())
        w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert t.calls == []
        await asyncio.sleep(0)
        first = list(t.calls)
        w.write(HEAD)
        w.close()
        return first, t.calls[1:], t.closed
    first, then, closed = asyncio.run(run())
    assert first == [("write", b"HTTP/1.1 100 Continue\r\n\r\n")]
    assert then == [("write", HEAD)] and closed


def test_a_large_body_is_not_copied_behind_its_head():
    async def run():
        t = Written()
        w = OneWrite(t, asyncio.get_running_loop())
        w.write(HEAD)
        w.write(b"x" * OneWrite.BIG)
        return t.calls
    assert asyncio.run(run()) == [("write", HEAD), ("write", b"x" * OneWrite.BIG)]
