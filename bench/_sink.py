"""A counting SMTP sink (aiosmtpd) for the benchmarks, used when Postfix's smtp-sink
is not installed. Prints ``mesg=N`` (like ``smtp-sink -c``) after every message."""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiosmtpd.smtp import SMTP


class CountingHandler:
    def __init__(self) -> None:
        self.count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        sys.stdout.write(f"mesg={self.count}\r")
        sys.stdout.flush()
        return "250 OK"


async def main(port: int) -> None:
    handler = CountingHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink"), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
