"""Kinds that widen the calibration suite beyond `exams.py` and `everyday.py`.

Each kind is asked in several phrasings (templates), so a fit can be tested on a
phrasing, or a whole kind, it never saw: units, date arithmetic, extraction to JSON,
instructions with a format rule, logic, code reading, small talk, word arithmetic,
labelling in other words, and questions on a given passage. Every generator yields
`(level, prompt, answer, check, template)` from a seeded `random.Random`; the checks
are those of `podium.core.models.calibration_suite.mark`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

Row = tuple[int, str, Any, str, str]
Gen = Callable[[random.Random], Iterator[Row]]

NAMES = ["Maria", "Ahmed", "Julia", "Kofi", "Ines", "Pavel", "Sofia", "Daniel", "Yuki",
         "Lucas", "Nora", "Tariq"]
CITIES = ["Lyon", "Porto", "Osaka", "Denver", "Krakow", "Nairobi", "Quito", "Hanoi",
          "Bergen", "Seville"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]


def _days(right: str) -> list[str]:
    """The right day first, then the others: `first_of` marks the first one named."""
    return [right, *[d for d in DAYS if d != right]]


def _months(right: str) -> list[str]:
    return [right, *[m for m in MONTHS if m != right]]


def units(r: random.Random) -> Iterator[Row]:
    """Unit conversions in words other than `exams.conversion`'s."""
    pairs = [("hours", "minutes", 60), ("minutes", "seconds", 60), ("kilograms", "grams", 1000),
             ("meters", "centimeters", 100), ("liters", "milliliters", 1000),
             ("days", "hours", 24), ("weeks", "days", 7), ("kilometers", "meters", 1000)]
    for big, small, factor in pairs:
        n = r.randint(2, 9)
        yield 1, f"How many {small} are in {n} {big}?", n * factor, "number", "units/how-many"
    for big, small, factor in r.sample(pairs, 6):
        n = r.randint(2, 9)
        yield 1, f"Convert {n} {big} to {small}. Give just the number.", n * factor, "number", \
            "units/convert"
    for big, small, factor in r.sample(pairs, 6):
        n = r.randint(2, 9) * factor
        yield 2, f"{n} {small} is how many {big}?", n // factor, "number", "units/reverse"
    things = [("A rope", "meters", "centimeters", 100), ("A bottle", "liters", "milliliters", 1000),
              ("A parcel", "kilograms", "grams", 1000), ("A film", "hours", "minutes", 60)]
    for thing, big, small, factor in things:
        n = r.randint(2, 5)
        half = f"{n}.5"
        yield 2, f"{thing} measures {half} {big}. How much is that in {small}?", \
            int((n + 0.5) * factor), "number", "units/story"
    for _ in range(4):
        h, m = r.randint(1, 3), r.choice([15, 20, 30, 45])
        yield 2, f"How many minutes is {h} hours and {m} minutes in total?", h * 60 + m, \
            "number", "units/mixed"


def date_math(r: random.Random) -> Iterator[Row]:
    """Weekdays and months counted forward or back."""
    for _ in range(6):
        d, k = r.randrange(7), r.randint(1, 3)
        yield 1, f"What day of the week comes {k} days after {DAYS[d]}?", \
            _days(DAYS[(d + k) % 7]), "first_of", "dates/after"
    for _ in range(5):
        d, k = r.randrange(7), r.randint(1, 3)
        yield 2, f"If today is {DAYS[d]}, what day was it {k} days ago?", \
            _days(DAYS[(d - k) % 7]), "first_of", "dates/ago"
    for _ in range(5):
        m = r.randrange(12)
        yield 1, f"Which month comes right after {MONTHS[m]}?", \
            _months(MONTHS[(m + 1) % 12]), "first_of", "dates/next-month"
    for _ in range(5):
        m, k = r.randrange(12), r.randint(2, 5)
        yield 2, f"Name the month that is {k} months after {MONTHS[m]}.", \
            _months(MONTHS[(m + k) % 12]), "first_of", "dates/months-later"
    for _ in range(5):
        y, k = r.randint(1950, 2010), r.randint(3, 25)
        yield 1, f"What year is {k} years after {y}?", y + k, "number", "dates/years"
    for _ in range(4):
        born, now = r.randint(1960, 2000), r.randint(2015, 2024)
        yield 2, f"Someone was born in {born}. How old do they turn in {now}?", now - born, \
            "number", "dates/age"


def extract_json(r: random.Random) -> Iterator[Row]:
    """Fields out of a sentence, as a JSON object with named keys."""
    for _ in range(7):
        name, age = r.choice(NAMES), r.randint(19, 70)
        yield 1, (f'Extract the name and age from this sentence as JSON with keys "name" and '
                  f'"age": "{name} is {age} years old."'), {"name": name, "age": age}, \
            "json_keys", "json/name-age"
    for _ in range(7):
        name, city = r.choice(NAMES), r.choice(CITIES)
        yield 1, (f'Return a JSON object with the keys "person" and "city". Text: {name} '
                  f'moved to {city} last spring.'), {"person": name, "city": city}, \
            "json_keys", "json/person-city"
    for _ in range(7):
        item, qty, price = r.choice(["lamp", "chair", "kettle", "desk", "mirror"]), \
            r.randint(2, 9), r.randint(12, 90)
        yield 2, (f'Order note: "{qty} x {item} at {price} dollars each". Give JSON with '
                  f'"item", "quantity" and "unit_price".'), \
            {"item": item, "quantity": qty, "unit_price": price}, "json_keys", "json/order"
    for _ in range(6):
        name, day, city = r.choice(NAMES), r.choice(DAYS), r.choice(CITIES)
        yield 2, (f"Read: '{name} will fly to {city} on {day}.' Output only JSON like "
                  f'{{"traveller": ..., "destination": ..., "day": ...}}'), \
            {"traveller": name, "destination": city, "day": day}, "json_keys", "json/trip"
    for _ in range(5):
        a, b = r.sample(COLORS, 2)
        yield 1, (f'Make a JSON list of the two colours in "a {a} car next to a {b} '
                  f'bike", in order.'), [a, b], "json_list", "json/list"


def format_rules(r: random.Random) -> Iterator[Row]:
    """An instruction whose answer must keep a rule a program can check."""
    topics = ["the sea", "winter", "a city at night", "coffee", "a forest", "the moon",
              "a library", "rain"]
    for topic in r.sample(topics, 6):
        n = r.choice([3, 4, 5])
        yield 2, f"Describe {topic} in exactly {n} words.", n, "word_count", "format/words"
    for q, a in [("What color is the sky on a clear day?", "blue"),
                 ("What animal barks?", "dog"), ("What is the opposite of up?", "down"),
                 ("Name the planet we live on.", "earth"), ("What do cows drink?", "water"),
                 ("What color are ripe bananas?", "yellow")]:
        yield 2, f"Answer in capital letters only. {q}", a, "upper_contains", "format/caps"
    for thing in r.sample(["fruits", "animals", "colors", "countries", "vegetables",
                           "sports"], 5):
        n = r.choice([2, 3, 4])
        yield 2, f"List {n} {thing}, one per line, with nothing else.", n, "line_count", \
            "format/lines"
    for word in r.sample(["ready", "done", "yes", "okay", "confirmed", "understood"], 5):
        yield 1, f"Reply with only the word '{word}'.", word, "exact_ci", "format/only-word"
    for n in r.sample(range(2, 10), 5):
        words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine"]
        yield 1, f"Write the number {n} as a word, in lowercase.", words[n], "exact_ci", \
            "format/number-word"
    for color in r.sample(COLORS, 5):
        yield 2, (f"Start your reply with 'OK:' and then name something that is often "
                  f"{color}."), r"^\s*OK:", "regex", "format/prefix"
    for n in r.sample(range(3, 7), 3):
        yield 2, (f"Give the first {n} even numbers as a comma-separated list, no other "
                  "text."), [str(2 * i) for i in range(1, n + 1)], "sequence", "format/csv"


def logic(r: random.Random) -> Iterator[Row]:
    """Short deductions: syllogisms, orderings, conditionals, missing numbers."""
    kinds = [("cat", "animals"), ("rose", "flowers"), ("oak", "trees"), ("trout", "fish"),
             ("robin", "birds"), ("violin", "instruments")]
    for thing, group in kinds:
        name = r.choice(NAMES)
        yield 1, (f"All {thing}s are {group}. {name}'s pet is a {thing}. Is {name}'s pet "
                  f"one of the {group}? Answer yes or no."), "yes", "yesno", "logic/syllogism"
    for _ in range(6):
        a, b, c = r.sample(NAMES, 3)
        yield 2, (f"{a} is taller than {b}. {b} is taller than {c}. Who is the shortest?"), \
            [c, a, b], "first_of", "logic/order"
    for _ in range(5):
        a, b, c = r.sample(NAMES, 3)
        yield 2, (f"{a} finished before {b}, and {c} finished after {b}. Who finished "
                  "first?"), [a, b, c], "first_of", "logic/race"
    for _ in range(5):
        start, step = r.randint(1, 9), r.randint(2, 6)
        seq = [start + step * i for i in range(5)]
        gap = r.randint(1, 3)
        shown = ", ".join("_" if i == gap else str(v) for i, v in enumerate(seq))
        yield 1, f"Which number is missing: {shown}?", seq[gap], "number", "logic/sequence"
    for _ in range(5):
        x, k = r.randint(2, 20), r.randint(2, 15)
        yield 2, f"If x + {k} = {x + k}, what is x?", x, "number", "logic/equation"
    rules = [("If it rains, the street gets wet. It rained. Is the street wet?", "yes"),
             ("If the shop is open, the lights are on. The lights are off. Is the shop "
              "open?", "no"),
             ("Every student in the class passed. Lea is in the class. Did Lea pass?", "yes"),
             ("No fish can fly. A salmon is a fish. Can a salmon fly?", "no"),
             ("If a number is even, it is divisible by 2. Is 14 divisible by 2?", "yes"),
             ("Only members may enter. Ravi is not a member. May Ravi enter?", "no")]
    for q, a in rules:
        yield 2, q + " Answer yes or no.", a, "yesno", "logic/conditional"


def code_reading(r: random.Random) -> Iterator[Row]:
    """What a few lines of code give."""
    for _ in range(6):
        a, b = r.randint(2, 9), r.randint(2, 9)
        yield 1, f"What does f(3) return?\n\ndef f(n):\n    return n * {a} + {b}", 3 * a + b, \
            "number", "code/function"
    for word in r.sample(["hello", "planet", "stone", "river", "window", "garden", "cat"], 6):
        yield 1, f"In Python, what is len('{word}')?", len(word), "number", "code/len"
    for _ in range(6):
        x, k, m = r.randint(1, 9), r.randint(2, 5), r.randint(2, 4)
        yield 2, (f"What is the value of x after this runs?\nx = {x}\nx += {k}\nx *= {m}"), \
            (x + k) * m, "number", "code/assign"
    for word in r.sample(["apple", "night", "code", "paper", "music", "tiger"], 5):
        yield 1, f"What does '{word}'.upper() return in Python?", word.upper(), "contains", \
            "code/upper"
    for _ in range(5):
        xs = r.sample(range(1, 30), 4)
        yield 2, f"What does max({xs}) evaluate to in Python?", max(xs), "number", "code/max"
    for _ in range(4):
        n = r.randint(3, 7)
        yield 2, (f"How many times does this loop print?\nfor i in range({n}):\n    "
                  "print(i)"), n, "number", "code/loop"


def small_talk(r: random.Random) -> Iterator[Row]:
    """Social messages in phrasings `everyday.greetings` does not use."""
    rows = [("Thanks a lot, that helped!", ["welcome", "glad", "pleasure", "happy"]),
            ("Much appreciated, thank you.", ["welcome", "glad", "pleasure", "happy"]),
            ("Good night, talk tomorrow!", ["night", "sleep", "tomorrow", "dreams"]),
            ("Hey, how's your day going?", ["good", "great", "well", "fine", "thank"]),
            ("Nice to meet you!", ["nice", "meet", "pleasure", "too"]),
            ("Happy birthday to my favourite assistant!", ["thank", "birthday"]),
            ("I'm off for the weekend. See you Monday!", ["weekend", "enjoy", "see you",
                                                          "have a"]),
            ("Congratulations on the new version!", ["thank", "appreciate"]),
            ("Sorry for the late reply.", ["no problem", "worries", "okay", "fine",
                                           "no need", "apolog"]),
            ("Have a lovely evening!", ["you too", "thank", "evening"]),
            ("Yo! What's new?", ["hi", "hello", "hey", "not much", "nothing"]),
            ("Cheers for the quick answer.", ["welcome", "glad", "pleasure", "happy"])]
    for prompt, ok in rows:
        yield 1, prompt, ok, "one_of", "talk/social"
    for name in r.sample(NAMES, 6):
        yield 1, f"Hi, I'm {name}. What should I call you?", \
            ["assistant", "call me", "i'm", "i am", "my name"], "one_of", "talk/intro"


def word_arithmetic(r: random.Random) -> Iterator[Row]:
    """Sums asked in words rather than symbols."""
    for _ in range(5):
        a, b = r.randint(10, 60), r.randint(10, 60)
        yield 1, f"Add {a} and {b}.", a + b, "number", "words/add"
    for _ in range(5):
        a, b = r.randint(5, 30), r.randint(31, 90)
        yield 1, f"Subtract {a} from {b}.", b - a, "number", "words/subtract"
    for _ in range(5):
        a = r.randint(6, 40) * 2
        yield 1, f"What is half of {a}?", a // 2, "number", "words/half"
    for _ in range(5):
        a = r.randint(11, 49)
        yield 1, f"Double {a}.", 2 * a, "number", "words/double"
    for _ in range(5):
        p, n = r.choice([10, 20, 25, 50]), r.randint(2, 9) * 40
        yield 2, f"What is {p}% of {n}?", p * n // 100, "number", "words/percent"
    for _ in range(5):
        a, b = r.randint(3, 12), r.randint(3, 12)
        yield 2, f"Multiply {a} by {b}, then subtract {a}.", a * b - a, "number", \
            "words/two-steps"


def labelling(r: random.Random) -> Iterator[Row]:
    """Labels for a given text, asked differently from `everyday.classification`."""
    reviews = [("The food was cold and the waiter ignored us.", "negative"),
               ("Absolutely loved the concert, best night of the year!", "positive"),
               ("The package arrived broken and support never replied.", "negative"),
               ("Great value, fast delivery, would buy again.", "positive"),
               ("The hotel room smelled of smoke and the bed was hard.", "negative"),
               ("My kids adored the museum and the staff were so kind.", "positive")]
    for text, label in reviews:
        other = "positive" if label == "negative" else "negative"
        yield 1, f"Sentiment of this review, positive or negative? {text}", [label, other], \
            "only", "label/sentiment"
    mails = [("You have WON a free cruise!!! Click here to claim now", "spam"),
             ("Hi team, the meeting moved to 3pm tomorrow.", "not spam"),
             ("Cheap watches, 90% off, limited offer, buy now!!!", "spam"),
             ("Your invoice for March is attached. Thanks, Karen", "not spam"),
             ("Congratulations, you were selected for a $1000 gift card", "spam")]
    for text, label in mails:
        yield 2, f"Is this email spam or not spam?\n{text}", label, "spam_label", "label/spam"
    langs = [("Bonjour, comment allez-vous ?", "french"), ("Hola, ¿qué tal estás?", "spanish"),
             ("Guten Morgen, wie geht's?", "german"), ("Buongiorno, come stai?", "italian"),
             ("Olá, tudo bem com você?", "portuguese"), ("Hallo, hoe gaat het?", "dutch")]
    for text, lang in langs:
        yield 1, f"Which language is this written in? {text}", lang, "contains", "label/language"
    topics = [("The striker scored twice in the final minute.", "sports"),
              ("The central bank raised interest rates again.", "finance"),
              ("A new vaccine trial showed strong results.", "health"),
              ("The new phone has a faster chip and a better camera.", "technology"),
              ("The goalkeeper saved a penalty in extra time.", "sports"),
              ("Shares fell sharply after the earnings report.", "finance")]
    opts = ["sports", "finance", "health", "technology"]
    for text, topic in topics:
        yield 2, (f"Pick the topic (sports, finance, health or technology): {text}"), \
            [topic, *[o for o in opts if o != topic]], "only", "label/topic"


def passages(r: random.Random) -> Iterator[Row]:
    """Questions on a short given passage, answered from it."""
    for _ in range(6):
        name, city, n = r.choice(NAMES), r.choice(CITIES), r.randint(2, 9)
        text = (f"{name} runs a small bakery in {city}. Every morning {name} bakes {n} "
                f"trays of bread before opening at seven.")
        yield 1, f"{text}\nQuestion: In which city is the bakery?", city, "contains", \
            "passage/where"
        yield 2, f"{text}\nQuestion: How many trays of bread are baked each morning?", n, \
            "number", "passage/how-many"
    for _ in range(5):
        a, b = r.sample(NAMES, 2)
        pa, pb = r.sample(range(10, 40), 2)
        text = f"{a} paid {pa} dollars for the tickets and {b} paid {pb} dollars for dinner."
        who = a if pa > pb else b
        yield 2, f"{text}\nWho paid more?", [who, b if who == a else a], "first_of", \
            "passage/compare"
    for _ in range(5):
        day, color = r.choice(DAYS), r.choice(COLORS)
        yield 1, (f"Note: the {color} bins are collected on {day}s.\nOn which day are the "
                  f"{color} bins collected?"), day, "contains", "passage/day"


BREADTH: dict[str, Gen] = {
    "units": units, "date_math": date_math, "extract_json": extract_json,
    "format_rules": format_rules, "logic": logic, "code_reading": code_reading,
    "small_talk": small_talk, "word_arithmetic": word_arithmetic, "labelling": labelling,
    "passages": passages,
}
