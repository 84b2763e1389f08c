"""A TCP proxy that adds a fixed delay in each direction (pure latency, no bandwidth
limit), to see how senders behave when every SMTP round trip costs milliseconds."""

from __future__ import annotations

import argparse
import asyncio
from collections import deque


class DelayedPipe:
    """Forwards chunks to ``writer`` ``delay`` seconds after they arrived, in order."""

    def __init__(self, writer: asyncio.StreamWriter, delay: float) -> None:
        self.writer = writer
        self.delay = delay
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.loop = asyncio.get_running_loop()
        self.scheduled = False

    def push(self, data: bytes | None) -> None:
        self.queue.append((self.loop.time() + self.delay, data))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_at(self.queue[0][0], self.drain)

    def drain(self) -> None:
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            _, data = self.queue.popleft()
            if data is None:
                self.writer.close()
            elif not self.writer.is_closing():
                self.writer.write(data)
        if self.queue:
            self.loop.call_at(self.queue[0][0], self.drain)
        else:
            self.scheduled = False


async def pump(reader: asyncio.StreamReader, pipe: DelayedPipe) -> None:
    try:
        while data := await reader.read(65536):
            pipe.push(data)
    except ConnectionError:
        pass
    pipe.push(None)


async def main(listen: int, target_host: str, target_port: int, delay: float) -> None:
    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(
            pump(client_reader, DelayedPipe(server_writer, delay)),
            pump(server_reader, DelayedPipe(client_writer, delay)),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--delay-ms", type=float, default=10.0)
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    asyncio.run(main(args.listen, host, int(port), args.delay_ms / 1000))
