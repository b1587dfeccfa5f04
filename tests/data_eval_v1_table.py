"""The reasoning-eval-v1 items with an independent recomputation of each answer.

`tests/test_data_evalsets.py` checks the bundled JSONL against this table: same ids, prompts and
metadata, and every expected_answer equal to the recomputed one. The answers are worked out here
from the question's numbers with plain Python, never with the generators' helpers.
"""

from __future__ import annotations

import datetime
import math
from fractions import Fraction


def frac(num: int, den: int) -> str:
    f = Fraction(num, den)
    return f"{f.numerator}/{f.denominator}"


def weekday_after(start: str, days: int) -> str:
    # 2024-01-01 was a Monday; let the datetime module do the counting.
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    base = datetime.date(2024, 1, 1) + datetime.timedelta(days=names.index(start))
    return (base + datetime.timedelta(days=days)).strftime("%A")


def is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))


def next_prime(n: int) -> int:
    m = n + 1
    while not is_prime(m):
        m += 1
    return m


def yes(flag: bool) -> str:
    return "Yes" if flag else "No"


# (prompt, section, category, difficulty, answer)
ITEMS: list[tuple[str, str, str, str, object]] = [
    # arithmetic
    (
        "Sam has 47 stamps and gets 38 more. How many stamps does Sam have now?",
        "core",
        "arithmetic",
        "easy",
        47 + 38,
    ),
    ("What do you get when 306 is increased by 129?", "core", "arithmetic", "easy", 306 + 129),
    (
        "A shop had 512 bottles and sold 275. How many bottles remain?",
        "core",
        "arithmetic",
        "easy",
        512 - 275,
    ),
    ("Work out the difference: 900 minus 463.", "core", "arithmetic", "medium", 900 - 463),
    (
        "There are 23 rows of chairs with 17 chairs in each row. How many chairs are there?",
        "core",
        "arithmetic",
        "medium",
        23 * 17,
    ),
    ("Compute the product 46 · 9.", "core", "arithmetic", "easy", 46 * 9),
    (
        "A rope 252 m long is cut into 7 equal pieces. How long is each piece in metres?",
        "core",
        "arithmetic",
        "medium",
        252 // 7,
    ),
    ("What number times 8 gives 144?", "core", "arithmetic", "easy", 144 // 8),
    ("What is 2 to the fifth power?", "core", "arithmetic", "easy", 2**5),
    ("What number squared equals 196?", "core", "arithmetic", "easy", math.isqrt(196)),
    (
        "Evaluate 6! divided by 4!.",
        "trace_sensitive",
        "arithmetic",
        "medium",
        math.factorial(6) // math.factorial(4),
    ),
    ("Evaluate 18 - 12 ÷ 4 + 2 × 3.", "trace_sensitive", "arithmetic", "medium", 18 - 12 // 4 + 2 * 3),
    ("What is (15 - 7) × (3 + 4)?", "trace_sensitive", "arithmetic", "medium", (15 - 7) * (3 + 4)),
    ("Add 125, 250 and 375 together.", "core", "arithmetic", "easy", 125 + 250 + 375),
    ("What is 1000 minus 1?", "core", "arithmetic", "easy", 999),
    # decimals
    ("What is 3.6 plus 4.75?", "core", "decimals", "medium", "8.35"),
    ("Subtract 2.8 from 10.", "core", "decimals", "easy", "7.2"),
    ("What is 0.5 multiplied by 18?", "core", "decimals", "easy", 9),
    ("A pencil costs $0.35. How much do 6 pencils cost in dollars?", "core", "decimals", "medium", "2.1"),
    # percentages
    (
        "A class of 40 pupils has 35% wearing glasses. How many pupils wear glasses?",
        "core",
        "percentages",
        "easy",
        40 * 35 // 100,
    ),
    (
        "Out of 80 questions, Lina got 60 right. What percentage did she get right?",
        "core",
        "percentages",
        "easy",
        60 * 100 // 80,
    ),
    (
        "A $250 TV is reduced by 20% and then a further $15. What is the final price in dollars?",
        "trace_sensitive",
        "percentages",
        "hard",
        250 - 250 * 20 // 100 - 15,
    ),
    (
        "A salary of 1200 rises by 5%. What is the new salary?",
        "core",
        "percentages",
        "medium",
        1200 + 1200 * 5 // 100,
    ),
    ("25% of a number is 13. What is the number?", "trace_sensitive", "percentages", "medium", 13 * 4),
    (
        "A coat's price dropped from $80 to $60. By what percent was it reduced?",
        "trace_sensitive",
        "percentages",
        "medium",
        (80 - 60) * 100 // 80,
    ),
    # word problems
    (
        "Maya reads 12 pages every evening. How many pages will she have read after two weeks?",
        "trace_sensitive",
        "word_problem",
        "medium",
        12 * 14,
    ),
    (
        "Three friends split a $57 bill evenly. How much does each pay in dollars?",
        "core",
        "word_problem",
        "easy",
        57 // 3,
    ),
    (
        "A cinema ticket costs $9 and popcorn $4. What do 3 tickets and 2 popcorns cost in dollars?",
        "trace_sensitive",
        "word_problem",
        "medium",
        3 * 9 + 2 * 4,
    ),
    (
        "Leo is twice as old as his sister. His sister is 7. How old will Leo be in 5 years?",
        "trace_sensitive",
        "word_problem",
        "medium",
        2 * 7 + 5,
    ),
    (
        "A tank holds 300 litres and drains at 15 litres per minute. How many minutes until it is empty?",
        "core",
        "word_problem",
        "easy",
        300 // 15,
    ),
    (
        "A cyclist rides 18 km each hour. How far does she ride from 9 am to 1 pm?",
        "trace_sensitive",
        "word_problem",
        "medium",
        18 * 4,
    ),
    (
        "A plane flies 2400 km in 3 hours. What is its speed in km per hour?",
        "core",
        "word_problem",
        "easy",
        2400 // 3,
    ),
    (
        "How many hours does a 150 km journey take at 50 km per hour?",
        "core",
        "word_problem",
        "easy",
        150 // 50,
    ),
    (
        "Eggs come in boxes of 6. How many boxes are needed for 50 eggs?",
        "trace_sensitive",
        "word_problem",
        "medium",
        math.ceil(50 / 6),
    ),
    (
        "Two painters each paint 3 rooms a day. How many days do they need for 24 rooms?",
        "trace_sensitive",
        "word_problem",
        "medium",
        24 // (2 * 3),
    ),
    (
        "Tom has $20. He buys 3 notebooks at $4 each. How much money is left?",
        "trace_sensitive",
        "word_problem",
        "medium",
        20 - 3 * 4,
    ),
    (
        "The sum of the ages of a mother and daughter is 48. The mother is 30 years older. How old is the daughter?",
        "trace_sensitive",
        "word_problem",
        "hard",
        (48 - 30) // 2,
    ),
    (
        "A recipe uses 3 eggs for 12 muffins. How many eggs for 36 muffins?",
        "core",
        "word_problem",
        "easy",
        3 * 36 // 12,
    ),
    # unit conversion
    (
        "How many seconds are there in a quarter of an hour?",
        "trace_sensitive",
        "unit_conversion",
        "medium",
        15 * 60,
    ),
    ("A race is 5 km long. How long is it in metres?", "core", "unit_conversion", "easy", 5 * 1000),
    ("Express 3.5 kilograms in grams.", "core", "unit_conversion", "easy", 3500),
    ("A baby weighs 8 pounds. How many ounces is that?", "core", "unit_conversion", "easy", 8 * 16),
    ("How many inches tall is a 6-foot door?", "core", "unit_conversion", "easy", 6 * 12),
    ("How many cups are in 3 quarts?", "trace_sensitive", "unit_conversion", "medium", 3 * 2 * 2),
    (
        "A film lasts 135 minutes. How many whole hours and leftover minutes is that? Give the leftover minutes.",
        "core",
        "unit_conversion",
        "medium",
        135 % 60,
    ),
    ("Turn 2500 millilitres into litres.", "core", "unit_conversion", "easy", "2.5"),
    ("How many days make up 9 weeks?", "core", "unit_conversion", "easy", 63),
    # geometry
    (
        "A garden is 14 m by 9 m. How many metres of fence go around it?",
        "core",
        "geometry",
        "easy",
        2 * (14 + 9),
    ),
    (
        "A square has a perimeter of 36 cm. What is its area in square cm?",
        "trace_sensitive",
        "geometry",
        "medium",
        (36 // 4) ** 2,
    ),
    ("What is the area of a right triangle with legs 9 and 12?", "core", "geometry", "medium", 9 * 12 // 2),
    ("How many cubic centimetres fit in a box 10 cm × 4 cm × 5 cm?", "core", "geometry", "easy", 10 * 4 * 5),
    (
        "An isosceles triangle has a top angle of 40°. What is each base angle in degrees?",
        "trace_sensitive",
        "geometry",
        "medium",
        (180 - 40) // 2,
    ),
    (
        "Each angle of a regular hexagon measures how many degrees?",
        "core",
        "geometry",
        "medium",
        (6 - 2) * 180 // 6,
    ),
    (
        "How many sides has a polygon whose interior angles sum to 900°?",
        "trace_sensitive",
        "geometry",
        "hard",
        900 // 180 + 2,
    ),
    ("A rectangle has area 72 and width 6. What is its length?", "core", "geometry", "easy", 72 // 6),
    ("What is the volume of a cube whose edges are 7 cm?", "core", "geometry", "easy", 7**3),
    (
        "Two angles are complementary and one is 62°. What is the other in degrees?",
        "core",
        "geometry",
        "easy",
        90 - 62,
    ),
    # number theory
    ("Is 91 a prime?", "core", "number_theory", "medium", yes(is_prime(91))),
    ("Is 97 a prime?", "core", "number_theory", "medium", yes(is_prime(97))),
    ("What is the smallest prime larger than 90?", "core", "number_theory", "medium", next_prime(90)),
    (
        "What is the largest number that divides both 84 and 126?",
        "trace_sensitive",
        "number_theory",
        "medium",
        math.gcd(84, 126),
    ),
    (
        "What is the smallest number that both 8 and 12 divide into?",
        "core",
        "number_theory",
        "medium",
        8 * 12 // math.gcd(8, 12),
    ),
    ("Does 7 go into 343 with nothing left over?", "core", "number_theory", "easy", yes(343 % 7 == 0)),
    ("What is left over when 100 is split into groups of 7?", "core", "number_theory", "easy", 100 % 7),
    (
        "How many prime numbers are there between 10 and 30?",
        "trace_sensitive",
        "number_theory",
        "hard",
        sum(is_prime(n) for n in range(11, 30)),
    ),
    ("Is 2,024 divisible by 8?", "core", "number_theory", "easy", yes(2024 % 8 == 0)),
    # sequences
    ("Fill in the next term: 5, 11, 17, 23, __", "core", "sequences", "easy", 29),
    ("Next number in the list 2, 6, 18, 54?", "core", "sequences", "easy", 162),
    ("The sequence 100, 93, 86, 79 continues. What is the next value?", "core", "sequences", "easy", 72),
    (
        "A sequence starts 4, 9, 14, ... What is its 20th term?",
        "trace_sensitive",
        "sequences",
        "medium",
        4 + 19 * 5,
    ),
    ("What number comes after 1, 4, 9, 16, 25?", "core", "sequences", "medium", 36),
    (
        "What is the sum of the first 10 positive whole numbers?",
        "trace_sensitive",
        "sequences",
        "medium",
        sum(range(1, 11)),
    ),
    # calendar
    (
        "It is Wednesday today. Which weekday will it be 30 days from now?",
        "core",
        "calendar",
        "medium",
        weekday_after("Wednesday", 30),
    ),
    (
        "My birthday is 100 days after a Sunday. On which weekday does it fall?",
        "core",
        "calendar",
        "medium",
        weekday_after("Sunday", 100),
    ),
    (
        "Yesterday was Friday. What day will it be tomorrow?",
        "trace_sensitive",
        "calendar",
        "easy",
        weekday_after("Friday", 2),
    ),
    (
        "A project starts on a Monday and takes 3 weeks and 2 days. On what weekday does it end?",
        "trace_sensitive",
        "calendar",
        "medium",
        weekday_after("Monday", 23),
    ),
    (
        "What weekday was it 10 days before a Thursday?",
        "core",
        "calendar",
        "medium",
        weekday_after("Thursday", -10),
    ),
    # statistics
    (
        "Five test scores are 72, 85, 90, 64 and 89. What is the mean score?",
        "core",
        "statistics",
        "medium",
        (72 + 85 + 90 + 64 + 89) // 5,
    ),
    (
        "What is the middle value of 13, 2, 8, 21, 5 once sorted?",
        "core",
        "statistics",
        "easy",
        sorted([13, 2, 8, 21, 5])[2],
    ),
    ("Which number appears most often in 3, 7, 3, 9, 7, 3, 1?", "core", "statistics", "easy", 3),
    ("The average of four numbers is 15. What is their total?", "core", "statistics", "easy", 15 * 4),
    (
        "Temperatures were 4, 9, -2 and 11 degrees. What is the range?",
        "core",
        "statistics",
        "medium",
        11 - (-2),
    ),
    (
        "Three numbers average 20. Two of them are 18 and 25. What is the third?",
        "trace_sensitive",
        "statistics",
        "hard",
        3 * 20 - 18 - 25,
    ),
    # probability
    (
        "A spinner has 8 equal parts, 3 of them blue. What is the chance of landing on blue?",
        "core",
        "probability",
        "easy",
        frac(3, 8),
    ),
    (
        "A coin is tossed twice. What is the probability of two heads?",
        "trace_sensitive",
        "probability",
        "medium",
        frac(1, 4),
    ),
    (
        "A card is drawn from the numbers 1 to 10. What is the probability it is even?",
        "core",
        "probability",
        "easy",
        frac(5, 10),
    ),
    (
        "A bag holds 4 green, 5 red and 6 blue counters. What is the probability of picking red?",
        "core",
        "probability",
        "medium",
        frac(5, 15),
    ),
    ("What is the probability of rolling a 6 on one fair die?", "core", "probability", "easy", frac(1, 6)),
    # equations
    ("If 7y = 63, what is y?", "core", "equations", "easy", 63 // 7),
    ("Find n when n + 28 = 71.", "core", "equations", "easy", 71 - 28),
    ("Solve 5a - 9 = 41 for a.", "trace_sensitive", "equations", "medium", (41 + 9) // 5),
    (
        "A number doubled and then increased by 6 gives 30. What is the number?",
        "trace_sensitive",
        "equations",
        "medium",
        (30 - 6) // 2,
    ),
    ("If 3(x + 2) = 27, what is x?", "trace_sensitive", "equations", "hard", 27 // 3 - 2),
    # strings
    ("Spell the word 'lantern' backwards.", "core", "strings", "easy", "lantern"[::-1]),
    (
        "How many vowels are in the word 'education'?",
        "core",
        "strings",
        "medium",
        sum(ch in "aeiou" for ch in "education"),
    ),
    ("How many letters does 'Mississippi' have?", "core", "strings", "easy", len("Mississippi")),
    (
        "How many times does the letter s occur in 'Mississippi'?",
        "core",
        "strings",
        "medium",
        "mississippi".count("s"),
    ),
    (
        "Put these in alphabetical order and give the last one: pear, apple, fig, cherry.",
        "core",
        "strings",
        "medium",
        sorted(["pear", "apple", "fig", "cherry"])[-1],
    ),
    ("Write 'Reasoning' in capital letters.", "core", "strings", "easy", "REASONING"),
    # edge cases: formatting robustness
    ("what's twelve plus nine??", "edge_case", "formatting", "easy", 12 + 9),
    ("CALCULATE 15 TIMES 4. REPLY WITH A NUMBER ONLY.", "edge_case", "formatting", "easy", 15 * 4),
    ("  how   much is 81 divided by 9 ?  ", "edge_case", "formatting", "easy", 81 // 9),
    ("Please, if you would be so kind: what is 7 + 6? Thanks!!", "edge_case", "formatting", "easy", 7 + 6),
    ("Take thirty and subtract eleven. The result?", "edge_case", "formatting", "easy", 30 - 11),
    ("1,250 + 750 = ?", "edge_case", "formatting", "medium", 2000),
    ("What is one hundred minus forty-five? Digits only.", "edge_case", "formatting", "medium", 100 - 45),
    ("wHaT iS 9 sQuArEd?", "edge_case", "formatting", "easy", 81),
    ("Q: 13 x 3 = ?\nA:", "edge_case", "formatting", "easy", 39),
    ("Half of 64 is what?", "edge_case", "formatting", "easy", 64 // 2),
]


def expected_items() -> list[dict[str, str]]:
    """The file's records, in order, with recomputed answers as strings."""
    return [
        {
            "id": f"rev1-{n:03d}",
            "prompt": prompt,
            "expected_answer": str(answer),
            "section": section,
            "category": category,
            "difficulty": difficulty,
        }
        for n, (prompt, section, category, difficulty, answer) in enumerate(ITEMS, start=1)
    ]
