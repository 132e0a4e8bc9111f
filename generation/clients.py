"""Asking a model for one sample: an OpenAI-compatible server through the `openai` SDK, or a local folder
through transformers, behind one small interface; and turning every way that can fail into one message a
researcher can act on.

No Django here: `EndpointSpec` is a plain copy of a `ModelEndpoint`, so the benchmark and the tests use
the same client as the tasks.

Chat answers are always streamed: some servers (`transformers serve`) only answer chat requests with
`stream=True`, and every server that matters supports it. The SDK retries a request that fails to start
(429 with its Retry-After, 5xx, timeouts, refused connections) with exponential backoff; a stream that
breaks halfway cannot be retried by the SDK, so that is reported as retryable and the chunk tries again.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


class ErrorKind(StrEnum):
    MISSING_KEY = "missing_key"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    AUTH = "auth"
    MODEL_NOT_FOUND = "model_not_found"
    NO_ROUTE = "no_route"
    CONTEXT_LENGTH = "context_length"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    BAD_REQUEST = "bad_request"
    NOT_CAUSAL_LM = "not_causal_lm"
    EMPTY_ANSWER = "empty_answer"


# Errors after which no sample of the endpoint can succeed: the run stops asking it.
FATAL = {ErrorKind.MISSING_KEY, ErrorKind.AUTH, ErrorKind.MODEL_NOT_FOUND, ErrorKind.NO_ROUTE,
         ErrorKind.NOT_CAUSAL_LM}
# Errors that may pass: the chunk is retried later (a re-run fills what is still missing).
RETRYABLE = {ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT, ErrorKind.RATE_LIMITED, ErrorKind.SERVER_ERROR}


class EndpointError(Exception):
    def __init__(self, kind: ErrorKind, message: str):
        self.kind, self.message = kind, message
        super().__init__(message)

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    kind: str  # "openai" | "local"
    model: str
    base_url: str = ""
    mode: str = "chat"  # "chat" | "completion"
    api_key_env: str = ""
    max_concurrency: int = 4
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    timeout_seconds: float = 120.0
    max_retries: int = 4

    @classmethod
    def of(cls, endpoint: Any) -> EndpointSpec:
        """From a `ModelEndpoint` (or anything with the same attributes)."""
        return cls(**{f: getattr(endpoint, f) for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class SampleRequest:
    prompt: str
    system_prompt: str = ""
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None

    def estimated_tokens(self) -> int:
        """Prompt and answer tokens, counted before the request for the tokens-per-minute limit (4 characters
        a token, the usual rule for English with BPE vocabularies)."""
        return (len(self.prompt) + len(self.system_prompt)) // 4 + 1 + self.max_tokens


@dataclass
class SampleResult:
    text: str
    latency_ms: float
    finish_reason: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    request: dict[str, Any] = field(default_factory=dict)


class Client(Protocol):
    spec: EndpointSpec

    def sample(self, request: SampleRequest) -> SampleResult: ...


def api_key_of(spec: EndpointSpec, environ: dict[str, str] | None = None) -> str:
    """The key from the environment variable the endpoint names ("EMPTY" when it names none)."""
    if not spec.api_key_env:
        return "EMPTY"  # servers without authentication still want some bearer token
    key = (os.environ if environ is None else environ).get(spec.api_key_env, "")
    if not key:
        raise EndpointError(ErrorKind.MISSING_KEY,
                            f"endpoint {spec.name}: the environment variable {spec.api_key_env} that should hold "
                            f"its API key is not set (or empty) in the worker's environment")
    return key


# ------------------------------------------------------------------------------------------------------
# OpenAI-compatible servers


def _server_said(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") if isinstance(inner, dict) else inner
        if text:
            return str(text)[:300]
    message = getattr(exc, "message", "") or str(exc)
    return message[:300]


CONTEXT_WORDS = ("context length", "context_length", "maximum context", "too long", "too many tokens",
                 "max_model_len", "exceeds the model", "prompt is too long",
                 "`max_new_tokens` must be <=")  # the last: TGI's input validation


def classify_openai_error(exc: Exception, spec: EndpointSpec) -> EndpointError:
    """One message per way an OpenAI-compatible request fails."""
    import openai

    where = f"endpoint {spec.name} ({spec.base_url}, model {spec.model!r})"
    # A stream that breaks halfway raises the HTTP library's own error, not the SDK's (which HTTP library
    # depends on the SDK's version: httpx, httpx2 or httpcore), so those are recognised by their module.
    transport = type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore")
    if isinstance(exc, openai.APITimeoutError) or (transport and "Timeout" in type(exc).__name__):
        return EndpointError(ErrorKind.TIMEOUT, f"{where}: no answer within {spec.timeout_seconds:g} s "
                             f"(after {spec.max_retries} retries); raise the endpoint's timeout or lower its "
                             f"concurrency")
    if isinstance(exc, openai.APIConnectionError) or transport:
        cause = exc.__cause__ or exc
        return EndpointError(ErrorKind.UNREACHABLE, f"{where}: cannot reach the server ({cause.__class__.__name__}: "
                             f"{str(cause)[:200] or 'connection failed'}); is it running, and is the base URL right?")
    said = _server_said(exc)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        key = f"the key in {spec.api_key_env}" if spec.api_key_env else "no API key (api_key_env is empty)"
        return EndpointError(ErrorKind.AUTH, f"{where}: the server refused {key} "
                             f"(HTTP {exc.status_code}: {said})")
    if isinstance(exc, openai.NotFoundError):
        if "model" in said.lower():
            return EndpointError(ErrorKind.MODEL_NOT_FOUND, f"{where}: the server does not serve a model named "
                                 f"{spec.model!r} ({said})")
        route = "/chat/completions" if spec.mode == "chat" else "/completions"
        return EndpointError(ErrorKind.NO_ROUTE, f"{where}: the server has no {route} (HTTP 404: {said}); check the "
                             f"base URL (it usually ends in /v1) and the mode (chat or completion)")
    if isinstance(exc, openai.RateLimitError):
        return EndpointError(ErrorKind.RATE_LIMITED, f"{where}: still rate-limited after {spec.max_retries} retries "
                             f"(HTTP 429: {said}); lower the endpoint's requests or tokens per minute")
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        if any(word in said.lower() for word in CONTEXT_WORDS):
            return EndpointError(ErrorKind.CONTEXT_LENGTH, f"{where}: the prompt and max tokens do not fit the "
                                 f"model's context ({said}); lower max tokens or shorten the prompt template")
        if "model" in said.lower() and ("not" in said.lower() or "unknown" in said.lower()):
            return EndpointError(ErrorKind.MODEL_NOT_FOUND, f"{where}: the server does not serve a model named "
                                 f"{spec.model!r} ({said})")
        return EndpointError(ErrorKind.BAD_REQUEST, f"{where}: the server refused the request "
                             f"(HTTP {exc.status_code}: {said})")
    if isinstance(exc, openai.APIStatusError):
        return EndpointError(ErrorKind.SERVER_ERROR, f"{where}: the server failed (HTTP {exc.status_code}: {said}) "
                             f"after {spec.max_retries} retries; some servers answer 500 for an unknown model name")
    return EndpointError(ErrorKind.SERVER_ERROR, f"{where}: {exc.__class__.__name__}: {str(exc)[:300]}")


class OpenAIClient:
    """One sample per call through the `openai` SDK (thread-safe: the SDK's client can be shared)."""

    def __init__(self, spec: EndpointSpec, environ: dict[str, str] | None = None):
        import openai

        self.spec = spec
        self._client = openai.OpenAI(base_url=spec.base_url, api_key=api_key_of(spec, environ),
                                     timeout=spec.timeout_seconds, max_retries=spec.max_retries)

    def request_params(self, request: SampleRequest) -> dict[str, Any]:
        """The exact parameters sent (kept as the sample's provenance)."""
        params: dict[str, Any] = {"model": self.spec.model, "temperature": request.temperature,
                                  "top_p": request.top_p, "max_tokens": request.max_tokens, "stream": True,
                                  "stream_options": {"include_usage": True}}
        if request.seed is not None:
            params["seed"] = request.seed
        if self.spec.mode == "chat":
            messages = [{"role": "system", "content": request.system_prompt}] if request.system_prompt else []
            params["messages"] = [*messages, {"role": "user", "content": request.prompt}]
        else:
            params["prompt"] = (request.system_prompt + "\n\n" + request.prompt) if request.system_prompt \
                else request.prompt
        return params

    def sample(self, request: SampleRequest) -> SampleResult:
        params = self.request_params(request)
        started = time.perf_counter()
        parts: list[str] = []
        finish, usage = "", None
        try:
            if self.spec.mode == "chat":
                stream: Any = self._client.chat.completions.create(**params)
            else:
                stream = self._client.completions.create(**params)
            for chunk in stream:
                usage = getattr(chunk, "usage", None) or usage
                for choice in chunk.choices or ():
                    text = choice.delta.content if self.spec.mode == "chat" and choice.delta else \
                        getattr(choice, "text", None)
                    if text:
                        parts.append(text)
                    if choice.finish_reason:
                        finish = str(choice.finish_reason)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one EndpointError
            raise classify_openai_error(exc, self.spec) from exc
        return SampleResult(text="".join(parts), latency_ms=(time.perf_counter() - started) * 1000,
                            finish_reason=finish,
                            tokens_in=getattr(usage, "prompt_tokens", None) if usage else None,
                            tokens_out=getattr(usage, "completion_tokens", None) if usage else None,
                            request={k: v for k, v in params.items() if k != "stream_options"})


# ------------------------------------------------------------------------------------------------------
# local model folders (the gpu worker)


def causal_lm_problem(folder: str) -> str | None:
    """Why transformers' AutoModelForCausalLM cannot load this folder (read from its config), or None."""
    path = Path(folder)
    if not path.is_dir():
        return f"{folder} is not a folder on the worker"
    config_file = path / "config.json"
    if not config_file.is_file():
        return f"{folder} has no config.json: not a Hugging Face model folder"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        return f"{config_file} cannot be read ({exc})"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    architectures = config.get("architectures") or []
    if architectures and not set(architectures) & causal:
        return (f"{folder} holds a {', '.join(architectures)} model, not a causal language model "
                f"(AutoModelForCausalLM cannot generate with it)")
    if not architectures and config.get("model_type") not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return f"{folder}: model type {config.get('model_type')!r} is not a causal language model"
    return None


_local_models: dict[tuple[str, str], tuple[Any, Any]] = {}
_local_lock = threading.Lock()


class LocalClient:
    """Samples from a local folder with transformers, loaded once per worker process.

    Seeds go through torch's global generator, so samples are drawn one at a time under a lock (the gpu
    worker runs one task at a time anyway)."""

    def __init__(self, spec: EndpointSpec, device: str = "auto"):
        problem = causal_lm_problem(spec.model)
        if problem:
            raise EndpointError(ErrorKind.NOT_CAUSAL_LM, f"endpoint {spec.name}: {problem}")
        import torch

        self.spec = spec
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        key = (spec.model, self.device)
        with _local_lock:
            if key not in _local_models:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(spec.model)
                model = AutoModelForCausalLM.from_pretrained(spec.model)
                model = model.to(self.device).eval()  # type: ignore[arg-type]  # transformers' stubs: .to(str)
                _local_models[key] = (tokenizer, model)
        self.tokenizer, self.model = _local_models[key]

    def request_params(self, request: SampleRequest) -> dict[str, Any]:
        return {"model": self.spec.model, "mode": self.spec.mode, "system_prompt": request.system_prompt,
                "prompt": request.prompt, "temperature": request.temperature, "top_p": request.top_p,
                "max_new_tokens": request.max_tokens, "seed": request.seed, "device": self.device}

    def _input_ids(self, request: SampleRequest):
        tokenizer = self.tokenizer
        if self.spec.mode == "chat" and getattr(tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": request.system_prompt}] if request.system_prompt else []
            messages.append({"role": "user", "content": request.prompt})
            return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        text = (request.system_prompt + "\n\n" + request.prompt) if request.system_prompt else request.prompt
        return tokenizer(text, return_tensors="pt").input_ids

    def sample(self, request: SampleRequest) -> SampleResult:
        import torch
        from transformers import set_seed

        started = time.perf_counter()
        input_ids = self._input_ids(request).to(self.device)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and input_ids.shape[1] + request.max_tokens > limit:
            raise EndpointError(ErrorKind.CONTEXT_LENGTH,
                                f"endpoint {self.spec.name}: the prompt ({input_ids.shape[1]} tokens) and max tokens "
                                f"({request.max_tokens}) do not fit the model's context ({limit}); lower max "
                                f"tokens or shorten the prompt template")
        sampling = {"do_sample": True, "temperature": request.temperature, "top_p": request.top_p} \
            if request.temperature > 0 else {"do_sample": False}
        with _local_lock, torch.inference_mode():
            if request.seed is not None:
                set_seed(request.seed)
            output = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                         max_new_tokens=request.max_tokens,
                                         pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                                         **sampling)
        new = output[0, input_ids.shape[1]:]
        eos = self.model.generation_config.eos_token_id
        ended = len(new) and eos is not None and int(new[-1]) in (eos if isinstance(eos, list) else [eos])
        finish = "stop" if ended or len(new) < request.max_tokens else "length"
        return SampleResult(text=self.tokenizer.decode(new, skip_special_tokens=True),
                            latency_ms=(time.perf_counter() - started) * 1000, finish_reason=finish,
                            tokens_in=int(input_ids.shape[1]), tokens_out=int(len(new)),
                            request=self.request_params(request))


def client_for(spec: EndpointSpec) -> Client:
    """The client of an endpoint; raises EndpointError (missing key, not a causal LM) before any request."""
    if spec.kind == "local":
        return LocalClient(spec)
    return OpenAIClient(spec)
