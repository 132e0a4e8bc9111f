"""`ScriptedServer`: a local OpenAI-compatible chat server whose every answer the test writes.

It speaks the chat-completions protocol the way `transformers serve` and OpenAI do when streaming (SSE
`data:` lines: a role chunk, the text in pieces, a finish chunk, a usage chunk, then `data: [DONE]`), so
the judge runs go through the real `openai` SDK client; but the answer to each request is
`answer(body)`, so a test knows every verdict and can count the bias figures by hand. A helper of the
tests (bench/model_server.py serves the real tiny model).
"""
from __future__ import annotations

import http.server
import json
import re
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

ANSWER_A = re.compile(r"\[The Start of Assistant A's Answer\]\n(.*?)\n\[The End of Assistant A's Answer\]", re.S)
ANSWER_B = re.compile(r"\[The Start of Assistant B's Answer\]\n(.*?)\n\[The End of Assistant B's Answer\]", re.S)


def shown_answers(body: dict[str, Any]) -> tuple[str, str]:
    """The two answers a judge request shows (the default template's markers), first then second."""
    prompt = body["messages"][-1]["content"]
    first, second = ANSWER_A.search(prompt), ANSWER_B.search(prompt)
    assert first and second, prompt
    return first.group(1), second.group(1)


class ScriptedServer:
    """A local OpenAI-compatible chat server whose answer to each request is `answer(body)`, `body` being
    the request's JSON (model, messages, temperature, ...). Streams like a real server: a role chunk, the
    text in pieces, a chunk with finish_reason "stop", a usage chunk, `data: [DONE]`. Every request body
    is kept in `requests`."""

    def __init__(self, answer: Callable[[dict[str, Any]], str], piece_chars: int = 7):
        self.answer, self.piece_chars = answer, piece_chars
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with scripted._lock:
                    scripted.requests.append(body)
                text = scripted.answer(body)
                model = body.get("model", "scripted")
                prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                         "total_tokens": prompt_tokens + len(text.split())}
                if not body.get("stream"):
                    self._send_json(200, {"id": "scripted", "object": "chat.completion", "created": int(time.time()),
                                          "model": model, "usage": usage, "choices": [
                                              {"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": text}}]})
                    return

                def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
                    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
                    event = {"id": "scripted", "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": model, "choices": choices, **extra}
                    return f"data: {json.dumps(event)}\n\n".encode()

                events = [chunk({"role": "assistant", "content": ""})]
                events += [chunk({"content": text[i:i + scripted.piece_chars]})
                           for i in range(0, len(text), scripted.piece_chars)]
                events += [chunk({}, "stop"), chunk(None, usage=usage), b"data: [DONE]\n\n"]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in events:
                    self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> ScriptedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

