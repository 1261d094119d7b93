"""Local GGUF models in-process through llama-cpp-python.

Each model file is loaded once per process and guarded by its own lock (a llama.cpp
context is not thread-safe). Calls run in a worker thread so the event loop never
waits on the model; tokens cross back through a queue. JSON schemas become a
grammar, so structured output is valid by construction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from podium.core.errors import ModelMissing, PromptTooLong, Rejected, Unavailable
from podium.core.models.provider import Chunk, ModelRequest, TokenLogprob, Usage

_LOADED: dict[str, Any] = {}
_LOCKS: dict[str, threading.Lock] = {}
# One thread per model runs every call on it. llama.cpp's CPU thread pool belongs to
# the calling thread: calling from ever-new threads left earlier pools competing
# for the cores and made generation 8x slower (measured: 0.7 s -> 5.9 s for 120 tokens).
_THREADS: dict[str, ThreadPoolExecutor] = {}
_LOAD_LOCK = threading.Lock()
_EXECUTOR_LOCK = threading.Lock()
_DONE = object()


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp prints from C straight to fd 2; hide it while a model loads."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with open(os.devnull, "w") as sink, redirect_stderr(sink):
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# Whether local calls take turns machine-wide (below). A process whose cores are its
# own (a Ray batch worker, given its share of CPUs and as many llama.cpp threads) turns
# it off: workers beside each other on one machine then generate at once.
MACHINE_TURN = True


@contextmanager
def _machine_turn(on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the machine-wide local-model lock for one call; `on_wait` hears, once, that
    another process has it and this call waits its turn.

    llama.cpp's threads spin while they wait for each other; two processes generating
    at once on the same cores slowed each other down more than tenfold (measured: the
    document pipeline went from 2 s to over 120 s beside another run). Taking turns,
    each call gets all the cores and two runs finish in about twice the time.
    """
    if not MACHINE_TURN:
        yield
        return
    try:
        import fcntl
    except ImportError:  # not on POSIX: no cross-process turn-taking
        yield
        return
    import tempfile

    # Machine-wide, not per PODIUM_HOME: the cores are shared whatever the database.
    lock = Path(tempfile.gettempdir()) / f"podium-llama-{os.getuid()}.lock"
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait("waiting for the local model: another Podium process on this "
                        "machine is generating (one at a time, whatever the database)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class _Loaded:
    llama: Any
    lock: threading.Lock
    formatter: Any


# Prompt tokens llama.cpp computes per pass. In llama-cpp-python 0.3.16 on x86 CPUs with
# AVX-512/AMX, passes of 32 tokens or more take a matrix kernel whose logits are off by
# up to 6-11 nats: the embedded model answered "What is the capital of France?" with
# "You're welcome." Under 32, logits match the token-by-token path to ~1 nat; prompt
# evaluation is about 15% slower. (Measured here; `ubatch` in config.toml overrides.)
SAFE_UBATCH = 31


def _load(path: str, n_ctx: int, threads: int | None, gpu_layers: int,
          ubatch: int = SAFE_UBATCH) -> _Loaded:
    with _LOAD_LOCK:
        if path not in _LOADED:
            if not Path(path).exists():
                raise ModelMissing(f"model file not found: {path}",
                                   "check the path in config.toml (`podium models`)")
            try:
                import llama_cpp._logger as llama_logger
                from llama_cpp import Llama
            except ImportError as e:
                raise Unavailable(f"llama-cpp-python is not installed: {e}",
                                  "reinstall podium: make install") from None
            llama_logger.logger.setLevel(logging.CRITICAL)
            try:
                with _quiet_stderr():
                    llama = Llama(model_path=path, n_ctx=n_ctx, verbose=False,
                                  n_threads=threads or os.cpu_count() or 1,
                                  n_gpu_layers=gpu_layers, n_ubatch=ubatch,
                                  n_batch=max(512, ubatch))
            except (ValueError, RuntimeError) as e:
                raise Unavailable(f"cannot load model {path}: {e}",
                                  "is it a GGUF file llama.cpp supports?") from None
            _LOADED[path] = llama
            _LOCKS[path] = threading.Lock()
        llama = _LOADED[path]
        return _Loaded(llama, _LOCKS[path], _formatter(path))


_BUSY: dict[str, int] = {}  # model file -> calls of this process started and not ended


def _executor(path: str) -> ThreadPoolExecutor:
    # Not _LOAD_LOCK: the event loop calls this while a worker may hold that lock
    # for the whole of a model load.
    with _EXECUTOR_LOCK:
        if path not in _THREADS:
            _THREADS[path] = ThreadPoolExecutor(1, thread_name_prefix=f"llama:{Path(path).stem}")
        return _THREADS[path]


@lru_cache(maxsize=16)
def _formatter(path: str) -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llama = _LOADED[path]
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise Unavailable(f"{Path(path).name} has no chat template in its metadata",
                          "use an instruction-tuned GGUF that carries one")

    def token_text(token_id: int) -> str:
        return str(llama._model.token_get_text(token_id)) if token_id >= 0 else ""

    return Jinja2ChatFormatter(template, eos_token=token_text(llama.token_eos()),
                               bos_token=token_text(llama.token_bos()),
                               add_generation_prompt=True)


@lru_cache(maxsize=64)
def _grammar(schema_json: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        with _quiet_stderr():
            return LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as e:  # the converter asserts on what it does not support
        raise Rejected(f"cannot turn this JSON schema into a grammar: {e}",
                       "simplify the schema (plain types, enum, required)") from None


class _Logprobs:
    """A logits processor that records each generated token's log probability and the
    `top` likeliest alternatives (`ModelRequest.top_logprobs`), leaving the logits as
    they are. llama.cpp keeps no logits unless a model is loaded with `logits_all`, so
    they are read as each step sees them; a step's chosen token is known at the next
    step (the last input id). The last step's is the greedy pick, and an end-of-turn
    token is not reported (as OpenAI's API does); when sampling or under a grammar the
    last step's pick is unknown and it is left out."""

    def __init__(self, llama: Any, top: int) -> None:
        self.llama = llama
        self.top = top
        self.tokens: list[TokenLogprob] = []
        self.pending: Any = None  # the last step's log-softmax, its pick not yet known

    def __call__(self, ids: Any, scores: Any) -> Any:
        import numpy as np

        if self.pending is not None:
            self._add(int(ids[-1]))
        s = np.asarray(scores, dtype=np.float64)
        m = s.max()
        self.pending = s - m - np.log(np.exp(s - m).sum())
        return scores

    def _text(self, token: int) -> str:
        return str(self.llama.detokenize([token]).decode("utf-8", errors="replace"))

    def _add(self, token: int) -> None:
        import numpy as np

        lp = self.pending
        best = np.argpartition(lp, -self.top)[-self.top:]
        top = {self._text(int(i)): float(lp[i]) for i in best[np.argsort(-lp[best])]}
        self.tokens.append(TokenLogprob(self._text(token), float(lp[token]), top))
        self.pending = None

    def finish(self, *, greedy: bool) -> tuple[TokenLogprob, ...]:
        """The recorded tokens, once generation has ended."""
        if self.pending is not None and greedy:
            import llama_cpp

            last = int(self.pending.argmax())
            if not llama_cpp.llama_token_is_eog(self.llama._model.vocab, last):
                self._add(last)
        return tuple(self.tokens)


class LlamaCppProvider:
    """One GGUF model, served in this process."""

    tier: Literal["local", "remote"] = "local"
    supports_schema = True
    supports_tools = False
    needs_key = False
    key_env_var: str | None = None

    def __init__(self, name: str, path: str | Path, *, context: int = 2048,
                 threads: int | None = None, gpu_layers: int = 0,
                 ubatch: int = SAFE_UBATCH) -> None:
        self.name = name
        self.path = str(path)
        self.context = context
        self.threads = threads
        self.gpu_layers = gpu_layers
        self.ubatch = ubatch

    def _model(self) -> _Loaded:
        return _load(self.path, self.context, self.threads, self.gpu_layers, self.ubatch)

    def _prompt_tokens(self, model: _Loaded, request: ModelRequest) -> tuple[list[int],
                                                                              list[str]]:
        formatted = model.formatter(messages=[{"role": m.role, "content": m.content}
                                              for m in request.messages])
        tokens = model.llama.tokenize(formatted.prompt.encode(), add_bos=False, special=True)
        stop = formatted.stop if isinstance(formatted.stop, list) else (
            [formatted.stop] if formatted.stop else [])
        if len(tokens) + 8 > self.context:
            raise PromptTooLong(f"the prompt is {len(tokens)} tokens, over {self.name}'s "
                              f"context of {self.context}",
                              "shorten the input (e.g. | truncate_words(300)) or use a model "
                              "with a bigger context")
        return tokens, stop + list(request.stop)

    def _generate(self, request: ModelRequest, put: Any, cancelled: threading.Event) -> None:
        """Runs in a worker thread: stream pieces through `put`, then usage."""
        model = self._model()

        def waiting(note: str) -> None:
            put(Chunk(note=note))

        with model.lock, _machine_turn(waiting):
            self._generate_turn(model, request, put, cancelled)

    def _generate_turn(self, model: _Loaded, request: ModelRequest, put: Any,
                       cancelled: threading.Event) -> None:
        """The generation itself, once this call has the model and the machine's turn."""
        tokens, stop = self._prompt_tokens(model, request)
        counted = [0]

        def count(_ids: Any, scores: Any) -> Any:
            counted[0] += 1
            return scores

        grammar = None
        if request.schema is not None:
            grammar = _grammar(json.dumps(request.schema))
        max_tokens = min(request.max_tokens, self.context - len(tokens))
        recorder = _Logprobs(model.llama, request.top_logprobs) if (
            request.top_logprobs > 0) else None
        stream = model.llama.create_completion(
            tokens, max_tokens=max_tokens, temperature=request.temperature,
            stop=stop, stream=True, grammar=grammar,
            logits_processor=[count] + ([recorder] if recorder else []),
            seed=request.seed if request.seed is not None else 0xC0FFEE)
        finish = None
        for chunk in stream:
            choice = chunk["choices"][0]
            if choice.get("text"):
                put(Chunk(text=choice["text"]))
            finish = choice.get("finish_reason") or finish
            if cancelled.is_set():
                finish = "cancelled"
                break
        logprobs = recorder.finish(greedy=request.temperature <= 0 and grammar is None) \
            if recorder else ()
        put(Chunk(usage=Usage(len(tokens), counted[0]), finish_reason=finish or "stop",
                  logprobs=logprobs))

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        """Stream the answer from a worker thread."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                self._generate(request, put, cancelled)
            except BaseException as e:  # handed to the event loop, raised there
                put(e)
            finally:
                put(_DONE)

        if _BUSY.get(self.path):  # calls of this process queue for the model's one thread
            yield Chunk(note=f"waiting for the local model: another step is generating "
                        f"on {self.name}")
        _BUSY[self.path] = _BUSY.get(self.path, 0) + 1
        _executor(self.path).submit(work)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # Cancelled or closed early: stop generating at the next token.
            cancelled.set()
            _BUSY[self.path] -= 1

    async def score_choices(self, request: ModelRequest,
                            choices: list[str]) -> tuple[list[float], Usage]:
        """Log-likelihood of each choice as the complete answer (then end of turn)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_executor(self.path), self._score, request, choices)

    def _score(self, request: ModelRequest, choices: list[str]) -> tuple[list[float], Usage]:
        import numpy as np

        model = self._model()
        llama = model.llama
        with model.lock, _machine_turn():
            tokens, stop = self._prompt_tokens(model, request)
            end = llama.tokenize(stop[0].encode(), add_bos=False, special=True) if stop else [
                llama.token_eos()]
            cache: dict[tuple[int, ...], Any] = {}

            def next_logprobs(prefix: list[int]) -> Any:
                key = tuple(prefix)
                if key not in cache:
                    captured: list[Any] = []

                    def grab(_ids: Any, scores: Any) -> Any:
                        if not captured:
                            captured.append(np.array(scores, dtype=np.float64, copy=True))
                        return scores

                    # Prefix reuse in llama-cpp-python makes each call evaluate only
                    # the new tokens; one sampled token is the price of the logits.
                    llama.create_completion(prefix, max_tokens=1, temperature=0.0,
                                            logits_processor=[grab])
                    s = captured[0]
                    m = s.max()
                    cache[key] = s - m - np.log(np.exp(s - m).sum())
                return cache[key]

            evaluated = 0
            scores = []
            for choice in choices:
                ids = llama.tokenize(choice.encode(), add_bos=False, special=False) + end[:1]
                total = 0.0
                for j, token in enumerate(ids):
                    total += float(next_logprobs(tokens + ids[:j])[token])
                evaluated += len(ids)
                scores.append(total)
            # The probes leave the context positioned mid-answer; without a reset the
            # next generation reuses that state and runs slow and wrong.
            llama.reset()
            return scores, Usage(len(tokens), evaluated)
