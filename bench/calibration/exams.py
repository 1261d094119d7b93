"""Exam-style tasks: the calibration set's first eleven kinds.

Arithmetic, word problems, capitals, facts, spelling, unit conversions, comparison
chains, yes/no, Python output, plurals and opposites, sorting; each at up to three
levels. Every generator yields `(level, prompt, answer, check)` from a seeded
`random.Random`; `build.py` runs them in the order of `EXAMS`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

Gen = Callable[[random.Random], Iterator[tuple[int, str, Any, str]]]

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


EXAMS: dict[str, Gen] = {
    "arithmetic": arithmetic, "word_problem": word_problems, "capital": capitals,
    "fact": facts, "spelling": spelling, "conversion": conversions, "reasoning": reasoning,
    "yes_no": yes_no, "code_output": code_output, "sorting": sorting, "language": language}

