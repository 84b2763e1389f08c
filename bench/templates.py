"""Template messages: what rendering costs per message, in one run.

    python bench/templates.py [--messages 500] [--repeat 3]

The template is a real newsletter (``tests/data/newsletters/product-update.html``, 4.7
kB: table layout, a ``<style>`` block with ``@media``, a hidden preheader, eight links)
with a subject, the recipient's name and unsubscribe link as variables, and an inline
logo. Over one SMTP connection to a sink (Postfix's ``smtp-sink`` when installed, else
aiosmtpd, in its own process; every figure is checked against the sink's count):

1. baseline: ``send_messages`` of the same messages, rendered before the timing;
2. ``send_template(..., connection=c)`` for each message: rendering inside the timing;

the ratio, and the rendering cost per message (the difference of the two times per
message). Then where that cost goes: ``template_message`` alone (no sending), with
``EMAIL_TEMPLATE_INLINE_CSS = False``, and with a ``text`` block (no ``html_to_text``).
Each figure is the best of ``--repeat`` runs on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bulk import SINK_KINDS, Sink

import mailwright

NEWSLETTER = Path(__file__).parent.parent / "tests" / "data" / "newsletters"


def write_templates(directory: Path) -> None:
    html = (NEWSLETTER / "product-update.html").read_text()
    html = html.replace("Hi Dana,", "Hi {{ name }},")
    html = html.replace("unsubscribe?u=8f3a", "unsubscribe?u={{ uid }}")
    html = html.replace(
        'src="https://acme.example.com/static/logo.png"', "src=\"{{ inline_image('logo.png') }}\""
    )
    subject = "{% block subject %}What's new in March, {{ name }}{% endblock %}\n"
    (directory / "news.html").write_text(f"{subject}{{% block html %}}{html}{{% endblock %}}\n")
    text = "{% block text %}Hi {{ name }}, read it at https://acme.example.com/news{% endblock %}"
    (directory / "news_text.html").write_text(
        f"{subject}{{% block html %}}{html}{{% endblock %}}\n{text}\n"
    )
    (directory / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)


def contexts(count: int) -> list[dict[str, str]]:
    return [{"name": f"Reader {i}", "uid": f"{i:06x}"} for i in range(count)]


def best(repeat: int, run: Callable[[], object]) -> tuple[float, float]:
    """The shortest wall time and the least CPU time (this process) of ``repeat`` runs,
    in seconds. CPU time is the steadier figure on a shared machine."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--sink", choices=SINK_KINDS, default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.messages, args.repeat
    sink = Sink(args.sink)
    workdir = tempfile.TemporaryDirectory()
    directory = Path(workdir.name)
    write_templates(directory)
    mailwright.configure(
        EMAIL_BACKEND="mailwright.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=sink.port,
        EMAIL_TEMPLATE_DIRS=[str(directory)],
    )
    people = contexts(n)
    to = ["reader@example.com"]

    def checked(run: Callable[[], None]) -> Callable[[], None]:
        def wrapped() -> None:
            before = sink.count
            run()
            got = sink.wait_count(before + n) - before
            if got != n:
                raise SystemExit(f"the sink received {got} of {n} messages")

        return wrapped

    def prebuilt() -> tuple[float, float]:
        messages = [mailwright.template_message("news.html", c, to=to) for c in people]
        with mailwright.get_connection() as connection:

            def send() -> None:
                assert connection.send_messages(messages) == n

            return best(repeat, checked(send))

    def rendered() -> tuple[float, float]:
        with mailwright.get_connection() as connection:

            def send() -> None:
                for context in people:
                    sent = mailwright.send_template(
                        "news.html", context, to=to, connection=connection
                    )
                    assert sent == 1

            return best(repeat, checked(send))

    def render_only(name: str) -> tuple[float, float]:
        def run() -> None:
            for context in people:
                mailwright.template_message(name, context, to=to)

        return best(repeat, run)

    try:
        mailwright.template_message("news.html", people[0], to=to)  # compile the template
        size = len(mailwright.template_message("news.html", people[0], to=to).as_bytes())
        base_s = prebuilt()
        tpl_s = rendered()
        full = render_only("news.html")
        with mailwright.override_settings(EMAIL_TEMPLATE_INLINE_CSS=False):
            no_css = render_only("news.html")
        with_text = render_only("news_text.html")
    finally:
        sink.stop()
        workdir.cleanup()

    def us(seconds: float) -> float:
        return seconds / n * 1e6

    print(f"{sink.kind} sink, {n} messages of {size} bytes, one connection (best of {repeat})")
    print("                                        messages/s   wall µs/msg   CPU µs/msg")
    for label, (wall, cpu) in (
        ("send_messages, pre-built messages", base_s),
        ("send_template, rendered each time", tpl_s),
    ):
        print(f"  {label:36} {n / wall:8.0f}   {us(wall):11.0f}   {us(cpu):10.0f}")
    print(
        f"  {'send_template / send_messages':36} {base_s[0] / tpl_s[0]:7.2f}x"
        f"   rendering: {us(tpl_s[0] - base_s[0]):.0f} µs wall, "
        f"{us(tpl_s[1] - base_s[1]):.0f} µs CPU per message\n"
    )
    print("where rendering goes (template_message alone, no sending)")
    for label, (wall, cpu) in (
        ("Jinja2 + CSS inlining + html_to_text", full),
        ("without CSS inlining", no_css),
        ("with a text block (no html_to_text)", with_text),
    ):
        print(f"  {label:36} {'':8}   {us(wall):11.0f}   {us(cpu):10.0f}")


if __name__ == "__main__":
    main()
