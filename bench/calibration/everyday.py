"""Everyday requests: the calibration set's kinds that are not exam questions.

What people send an assistant besides puzzles: greetings and thanks, "repeat this",
picking a name, place or number out of a given sentence, labelling a given text from
offered labels, questions about a short given passage, well-known facts, "which is
bigger", small JSON objects, well-known lists, dates and one-word translations.
Each kind has easy and hard levels where the task allows (a fact everyone knows
against an obscure one; a lookup in a passage against a sum over it) and several
wordings, chosen at random. Every generator yields `(level, prompt, answer, check)`
from a seeded `random.Random`; `build.py` runs them after the exam kinds, in the order
of `EVERYDAY`. No prompt is kept or dropped by how the model does on it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

Gen = Callable[[random.Random], Iterator[tuple[int, str, Any, str]]]

PEOPLE = ["Maria", "Peter", "Sofia", "Daniel", "Priya", "Kenji", "Lucas", "Emma", "Ahmed",
          "Chloe", "Ivan", "Nora", "Diego", "Hannah", "Yusuf", "Grace"]
CITIES = ["Lisbon", "Oslo", "Chicago", "Osaka", "Dublin", "Madrid", "Toronto", "Vienna",
          "Nairobi", "Sydney", "Prague", "Seattle"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
SOCIAL = ["hello", "hi", "hey", "welcome", "glad", "help", "assist", "good", "fine", "well",
          "great", "thank", "thanks", "pleasure", "morning", "afternoon", "evening", "night",
          "bye", "goodbye", "care", "nice", "meet", "see you", "happy", "you too",
          "same to you", "enjoy"]


def greetings(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Hellos, thanks and goodbyes: any friendly reply is right."""
    openers = ["Hi", "Hello", "Hey", "Hi there", "Hello again", "Good morning",
               "Good afternoon", "Good evening", "Good night", "Thanks", "Thank you",
               "Thanks a lot", "Thank you so much", "Bye", "Goodbye", "See you later",
               "Nice to meet you", "Hey, how are you", "Hello, how are you",
               "Hi, how's it going", "Thanks for your help", "Morning", "Cheers",
               "Hi, good to see you", "Have a nice day", "Good to see you",
               "Thank you, that helped", "Happy new year", "Hello, anyone there",
               "Thanks, that was useful", "Hey, what's up", "Have a good weekend",
               "Thanks again", "Hi, I'm back", "Good day", "Take care", "Hello, how is your day",
               "Thank you for the answer", "Enjoy your evening", "Hiya"]
    for opener in openers:
        end = "?" if "how" in opener else r.choice(["!", ".", "", " :)"])
        yield 1, opener + end, SOCIAL, "one_of"


ECHO_WORDS = ["apple", "river", "yellow", "table", "monkey", "window", "silver", "garden",
              "pencil", "orange", "rocket", "castle", "butter", "forest", "summer", "planet"]
ECHO_SENTENCES = ["The cat sat on the mat", "I like green tea", "See you at noon",
                  "The door is open", "We meet on Friday", "It is raining today",
                  "My bag is blue", "Dinner is at seven", "The train was late again",
                  "Please close the window", "Our team won the game", "The shop opens at nine",
                  "She reads a book every week", "The coffee is too hot",
                  "Birds sing in the morning", "He forgot his umbrella",
                  "The meeting starts soon", "This road leads to the sea",
                  "I will call you tomorrow", "The garden needs water"]


def echo(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Say a given word back, then a given sentence: the reply must be just that."""
    for w in ECHO_WORDS:
        yield 1, r.choice([f"Repeat this word exactly: {w}", f"Reply with just the word {w}.",
                           f"Say '{w}' and nothing else.", f"Echo back: {w}"]), w, "exact_ci"
    for s in ECHO_SENTENCES:
        yield 2, r.choice([f"Repeat this sentence exactly: {s}.",
                           f"Copy this sentence word for word: {s}."]), s, "exact_ci"


def extraction(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Pick one name, place, day or number out of a given sentence; then, with two
    people in it, the one who did something."""
    doings = ["moved to {c} for a new job", "flew to {c} to visit a friend",
              "opened a bakery in {c}", "ran a marathon in {c}", "gave a talk in {c}"]
    for _ in range(24):
        p, c, d = r.choice(PEOPLE), r.choice(CITIES), r.choice(DAYS)
        sentence = f"On {d}, {p} {r.choice(doings).format(c=c)}."
        what, answer = r.choice([
            ("Which city is mentioned in this sentence?", c),
            ("What is the name of the person in this sentence?", p),
            ("Who is this sentence about?", p),
            ("On which day did it happen?", d),
            ("Where did it happen?", c)])
        yield 1, f"{what} \"{sentence}\"", answer, "extract"
    for _ in range(6):
        n, thing = r.randint(3, 95), r.choice(["chairs", "tickets", "boxes", "guests"])
        yield 1, r.choice([f"What number is mentioned here? \"We need {n} {thing} for Saturday.\"",
                           f"How many {thing} are mentioned in this note? \"Please order "
                           f"{n} {thing} before the weekend.\""]), str(n), "extract"
    for _ in range(4):
        p = r.choice(PEOPLE)
        addr = f"{p.lower()}@{r.choice(['example.com', 'mail.org', 'post.net'])}"
        yield 1, (f"What is the email address in this text? \"You can reach {p} at {addr} "
                  "after lunch.\""), addr, "extract"
    for _ in range(10):
        a, b = r.sample(PEOPLE, 2)
        thing = r.choice(["the book", "a letter", "the keys", "a present"])
        if r.random() < 0.5:
            yield 2, f"\"{a} gave {thing} to {b}.\" Who gave {thing}?", [a, b], "first_of"
        else:
            yield 2, f"\"{a} gave {thing} to {b}.\" Who received {thing}?", [b, a], "first_of"


REVIEWS = {"positive": ["I love this phone, it works perfectly.", "Great service and friendly "
                        "staff!", "Absolutely wonderful, highly recommend.", "Best pizza in "
                        "town, we will be back.", "Fast delivery and the shoes fit well.",
                        "The hotel room was clean and quiet."],
           "negative": ["This is the worst purchase I have ever made.", "The food was cold "
                        "and tasteless.", "Broke after one day. Terrible.", "Rude staff and a "
                        "long wait.", "The battery died after two days.", "Nothing worked "
                        "and support never answered."]}
TOPICS = {"sports": ["The team won the match 3-1 last night.", "The striker scored twice in "
                     "the final.", "The goalkeeper saved a penalty.", "She finished the race "
                     "in record time."],
          "cooking": ["Add two cups of flour and bake for 20 minutes.", "Stir the soup and "
                      "add salt to taste.", "Chop the onions finely before frying.", "Let "
                      "the dough rest for an hour."],
          "weather": ["Heavy rain is expected tomorrow afternoon.", "It will be sunny and "
                      "warm all week.", "Strong winds are coming from the north.", "Snow "
                      "will cover the hills tonight."]}
TICKETS = {"billing": ["I was charged twice for my subscription.", "Please refund my last "
                       "payment.", "My invoice shows the wrong amount.", "Why did my card "
                       "get charged again?", "I want a receipt for my payment."],
           "bug": ["The app crashes when I open settings.", "The save button does nothing "
                   "and shows an error.", "Pages fail to load after the update.", "The "
                   "screen freezes when I upload a photo.", "Login fails with error 500."]}
GREETINGS_IN = {"French": "Bonjour, comment allez-vous ?", "Spanish": "Hola, ¿cómo estás?",
                "German": "Guten Morgen, wie geht es dir?", "Italian": "Ciao, come stai?",
                "English": "Good evening, how are you?", "Portuguese": "Bom dia, tudo bem?",
                "Dutch": "Goedemorgen, hoe gaat het?", "Swedish": "Hej, hur mår du?"}


def classification(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Label a given text with one of the offered labels: sentiment, topic, support
    ticket; then name the language of a short sentence."""
    for label, texts in REVIEWS.items():
        other = "negative" if label == "positive" else "positive"
        for t in texts:
            ask = r.choice(["Is this review positive or negative?",
                            "Classify the sentiment of this review as positive or negative:",
                            "Positive or negative?"])
            yield 1, f"{ask} \"{t}\"", [label, other], "only"
    labels = list(TOPICS)
    for label, texts in TOPICS.items():
        for t in texts:
            offered = r.sample(labels, 3)
            yield 1, (f"Is this text about {offered[0]}, {offered[1]} or {offered[2]}? "
                      f"\"{t}\""), [label] + [x for x in labels if x != label], "only"
    for label, texts in TICKETS.items():
        other = "bug" if label == "billing" else "billing"
        for t in texts:
            ask = r.choice(["Classify this customer message as billing or bug:",
                            "Is this support ticket about billing or a bug?"])
            yield 1, f"{ask} \"{t}\"", [label, other], "only"
    langs = list(GREETINGS_IN)
    for lang, text in GREETINGS_IN.items():
        yield 2, f"What language is this sentence in? \"{text}\"", \
            [lang] + [x for x in langs if x != lang], "only"


PETS = [("dog", "Rex"), ("cat", "Milo"), ("parrot", "Coco"), ("rabbit", "Max"),
        ("horse", "Luna"), ("tortoise", "Shelly")]
JOBS = ["nurse", "baker", "pilot", "teacher", "plumber", "librarian", "chef", "farmer"]


def reading(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """A short passage about a person, then a question it answers directly; then one
    that needs a sum or difference over its numbers."""
    for i in range(30):
        p, c, job = r.choice(PEOPLE), r.choice(CITIES), r.choice(JOBS)
        (pet, pet_name), age = r.choice(PETS), r.randint(24, 61)
        sisters, brothers = r.randint(1, 4), r.randint(1, 4)
        passage = (f"{p} is {age} years old and works as a {job} in {c}. {p} has "
                   f"{sisters} sisters and {brothers} brothers, and a {pet} called "
                   f"{pet_name}. Every weekend they walk along the river together.")
        if i < 20:
            q, a, check = r.choice([
                (f"What is the name of {p}'s {pet}?", pet_name, "contains"),
                (f"Where does {p} work?", c, "contains"),
                (f"What is {p}'s job?", job, "contains"),
                (f"How old is {p}?", age, "number")])
            yield 1, f"{passage}\n\n{q}", a, check
        else:
            k = r.randint(3, 12)
            q, a = r.choice([
                (f"How many siblings does {p} have in total?", sisters + brothers),
                (f"How old will {p} be in {k} years?", age + k),
                (f"How old was {p} {k} years ago?", age - k)])
            yield 3, f"{passage}\n\n{q}", a, "number"


EASY_KNOWLEDGE = [("Who painted the Mona Lisa?", ["Leonardo", "Vinci"]),
                  ("Who wrote Romeo and Juliet?", ["Shakespeare"]),
                  ("Who invented the light bulb?", ["Edison"]),
                  ("Who developed the theory of relativity?", ["Einstein"]),
                  ("Who was the first person to walk on the Moon?", ["Armstrong"]),
                  ("Who wrote the Harry Potter books?", ["Rowling"]),
                  ("What is the largest planet in our solar system?", ["Jupiter"]),
                  ("What is the largest ocean on Earth?", ["Pacific"]),
                  ("What is the tallest animal?", ["giraffe"]),
                  ("What do bees make?", ["honey"]),
                  ("What is the boiling point of water in degrees Celsius?", ["100"]),
                  ("Who painted 'The Starry Night'?", ["Gogh"]),
                  ("Who wrote 'Pride and Prejudice'?", ["Austen"]),
                  ("Who discovered gravity when an apple fell on his head?", ["Newton"]),
                  ("Who invented the telephone?", ["Bell"]),
                  ("Who was the first president of the United States?", ["Washington"]),
                  ("Who wrote 'The Adventures of Tom Sawyer'?", ["Twain"]),
                  ("Who composed the 'Moonlight Sonata'?", ["Beethoven"]),
                  ("In which city is the Eiffel Tower?", ["Paris"]),
                  ("In which country are the pyramids of Giza?", ["Egypt"]),
                  ("In which city is the Colosseum?", ["Rome"]),
                  ("In which country is the Great Wall?", ["China"]),
                  ("What planet do we live on?", ["Earth"]),
                  ("What is the closest star to Earth?", ["Sun"]),
                  ("What is the largest desert in Africa?", ["Sahara"]),
                  ("What is the largest mammal?", ["whale"]),
                  ("What gas do plants take in from the air?", ["carbon dioxide", "CO2"]),
                  ("What is the freezing point of water in degrees Celsius?", ["0", "zero"]),
                  ("What is the longest river in Africa?", ["Nile"]),
                  ("Which planet is known as the Red Planet?", ["Mars"]),
                  ("What is the currency of Japan?", ["yen"]),
                  ("What is the currency of the United States?", ["dollar"]),
                  ("What animal is known as the king of the jungle?", ["lion"]),
                  ("How many players are on a soccer team on the field?", ["11", "eleven"]),
                  ("What is the main ingredient of guacamole?", ["avocado"])]
EASY_LANGUAGES = {"Germany": "German", "Japan": "Japanese", "Mexico": "Spanish",
                  "Italy": "Italian", "Russia": "Russian", "France": "French",
                  "Greece": "Greek", "Sweden": "Swedish", "China": ["Chinese", "Mandarin"]}
HARD_KNOWLEDGE = [("Who wrote 'The Master and Margarita'?", ["Bulgakov"]),
                  ("Who composed 'The Rite of Spring'?", ["Stravinsky"]),
                  ("Who painted 'The Night Watch'?", ["Rembrandt"]),
                  ("Who discovered penicillin?", ["Fleming"]),
                  ("Who wrote 'The Tale of Genji'?", ["Murasaki"]),
                  ("What is the largest moon of Neptune?", ["Triton"]),
                  ("Who painted 'The Hay Wain'?", ["Constable"]),
                  ("Who wrote 'Pedro Paramo'?", ["Rulfo"]),
                  ("Who invented the Jacquard loom?", ["Jacquard"]),
                  ("Who composed 'Pictures at an Exhibition'?", ["Mussorgsky"]),
                  ("In which city is the Atomium?", ["Brussels"]),
                  ("In which country is the Bamiyan valley?", ["Afghanistan"]),
                  ("In which city is the Alhambra?", ["Granada"]),
                  ("What is the largest desert in Asia?", ["Gobi", "Arabian"]),
                  ("What is the currency of Kazakhstan?", ["tenge"]),
                  ("What is the currency of Ethiopia?", ["birr"]),
                  ("Which planet has the moon Oberon?", ["Uranus"]),
                  ("What is the main ingredient of tahini?", ["sesame"])]
HARD_LANGUAGES = {"Suriname": "Dutch", "Mozambique": "Portuguese", "Andorra": "Catalan",
                  "Eritrea": "Tigrinya", "Bhutan": "Dzongkha", "Haiti": ["French", "Creole"]}


def knowledge(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Well-known people, things and languages, then obscure ones, in the same words."""
    for q, a in EASY_KNOWLEDGE:
        yield 1, q, a, "one_of"
    for country, lang in EASY_LANGUAGES.items():
        q = r.choice([f"What language is spoken in {country}?",
                      f"What is the main language of {country}?"])
        yield 1, q, lang if isinstance(lang, list) else [lang], "one_of"
    for q, a in HARD_KNOWLEDGE:
        yield 3, q, a, "one_of"
    for country, lang in HARD_LANGUAGES.items():
        q = r.choice([f"What language is spoken in {country}?",
                      f"What is the main language of {country}?"])
        yield 3, q, lang if isinstance(lang, list) else [lang], "one_of"


SIZES = [("bigger", "an elephant", "a mouse"), ("bigger", "a house", "a cup"),
         ("hotter", "fire", "ice"), ("faster", "a car", "a snail"),
         ("heavier", "a truck", "a feather"), ("taller", "a giraffe", "a cat"),
         ("colder", "snow", "soup"), ("longer", "a river", "a pencil"),
         ("louder", "a drum", "a whisper"), ("older", "a grandfather", "a baby"),
         ("bigger", "the Sun", "the Moon"), ("faster", "a plane", "a bicycle"),
         ("heavier", "a rock", "a leaf"), ("smaller", "an ant", "a dog")]


def comparisons(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Which of two everyday things is bigger (faster, hotter...), then which of two
    decimals or fractions is larger."""
    for adj, a, b in SIZES:
        first, second = (a, b) if r.random() < 0.5 else (b, a)
        yield 1, f"Which is {adj}, {first} or {second}?", \
            [a.split()[-1], b.split()[-1]], "first_of"
    for _ in range(5):
        x = r.randint(11, 89)
        a, b = f"0.{x}", f"0.{x // 10}{r.randint(0, 9)}{r.randint(1, 9)}"
        big, small = (a, b) if float(a) > float(b) else (b, a)
        first, second = (a, b) if r.random() < 0.5 else (b, a)
        yield 3, f"Which is larger, {first} or {second}?", [big, small], "first_of"
    for _ in range(5):
        p, q, s, t = r.randint(1, 5), r.randint(6, 9), r.randint(1, 5), r.randint(6, 9)
        if p * t == s * q:
            continue
        a, b = f"{p}/{q}", f"{s}/{t}"
        big, small = (a, b) if p * t > s * q else (b, a)
        yield 3, f"Which fraction is larger, {a} or {b}?", [big, small], "first_of"


def json_objects(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """A small JSON object from given values, then one whose values must be worked out."""
    for _ in range(12):
        p, c, age = r.choice(PEOPLE), r.choice(CITIES), r.randint(18, 80)
        if r.random() < 0.5:
            yield 1, (f"Write a JSON object with the keys \"name\" and \"age\" for {p}, who is "
                      f"{age} years old."), {"name": p, "age": age}, "json"
        else:
            yield 1, (f"Give me JSON with keys \"name\" and \"city\": {p} lives in {c}."), \
                {"name": p, "city": c}, "json"
    for _ in range(8):
        a, b = r.randint(3, 19), r.randint(3, 19)
        if r.random() < 0.5:
            yield 3, (f"Write a JSON object with the keys \"sum\" and \"product\" of {a} and "
                      f"{b}."), {"sum": a + b, "product": a * b}, "json"
        else:
            xs = r.sample(range(2, 40), 4)
            yield 3, (f"Return JSON with the keys \"min\", \"max\" and \"count\" for these "
                      f"numbers: {', '.join(map(str, xs))}"), \
                {"min": min(xs), "max": max(xs), "count": 4}, "json"


def lists(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """Lists everyone knows (months, days, letters, counting), then lists to work out
    (multiples, squares, primes)."""
    yield 1, "List the months of the year in order.", [m.lower() for m in MONTHS], "sequence"
    yield 1, "List the days of the week, starting with Monday.", \
        [d.lower() for d in DAYS], "sequence"
    for k in (3, 5, 6):
        yield 1, f"Name the first {k} letters of the alphabet.", \
            list("abcdefghijklmnop"[:k]), "sequence"
    for k in (3, 4, 6):
        yield 1, f"Name the first {k} months of the year.", \
            [m.lower() for m in MONTHS[:k]], "sequence"
    for a, b in ((1, 5), (1, 10), (10, 15)):
        yield 1, f"Count from {a} to {b}.", list(range(a, b + 1)), "sequence"
    for _ in range(5):
        n, k = r.randint(3, 9), r.randint(5, 8)
        yield 3, f"List the first {k} multiples of {n}, separated by commas.", \
            [n * i for i in range(1, k + 1)], "sequence"
    for k in (5, 7):
        yield 3, f"List the squares of the numbers 1 to {k}.", \
            [i * i for i in range(1, k + 1)], "sequence"
    for n in (20, 30, 50):
        yield 3, f"List all prime numbers below {n}.", \
            [p for p in range(2, n) if all(p % d for d in range(2, p))], "sequence"


def dates(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """The day after a given day, then weekdays and months many steps away."""
    for d in r.sample(DAYS, 4):
        yield 1, f"What day comes after {d}?", DAYS[(DAYS.index(d) + 1) % 7], "contains"
    for _ in range(5):
        m, k = r.choice(MONTHS), r.randint(2, 10)
        yield 2, f"What month is it {k} months after {m}?", \
            MONTHS[(MONTHS.index(m) + k) % 12], "contains"
    for _ in range(7):
        d, k = r.choice(DAYS), r.randint(9, 120)
        yield 3, f"Today is {d}. What day of the week will it be in {k} days?", \
            DAYS[(DAYS.index(d) + k) % 7], "contains"


TRANSLATIONS = [("hello", "Spanish", ["hola"]), ("thank you", "Spanish", ["gracias"]),
                ("cat", "Spanish", ["gato"]), ("water", "Spanish", ["agua"]),
                ("house", "Spanish", ["casa"]), ("good morning", "French", ["bonjour"]),
                ("thank you", "French", ["merci"]), ("dog", "French", ["chien"]),
                ("bread", "French", ["pain"]), ("thank you", "German", ["danke"]),
                ("book", "German", ["Buch"]), ("yes", "Italian", ["sì", "si"])]


def translation(r: random.Random) -> Iterator[tuple[int, str, Any, str]]:
    """One common word or greeting into a major language."""
    for word, lang, answers in TRANSLATIONS:
        yield 2, r.choice([f"What is '{word}' in {lang}?", f"Translate '{word}' into {lang}.",
                           f"How do you say '{word}' in {lang}?"]), answers, "one_of"


EVERYDAY: dict[str, Gen] = {
    "greeting": greetings, "echo": echo, "extraction": extraction,
    "classification": classification, "reading": reading, "knowledge": knowledge,
    "comparison": comparisons, "json": json_objects, "list": lists, "date": dates,
    "translation": translation}
