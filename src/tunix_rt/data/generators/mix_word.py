"""reasoning-mix families: percentages, money, word problems, rates and unit conversions."""

from __future__ import annotations

import random

from tunix_rt.data.generators.mix_arithmetic import Item, mul_steps, pick

NAMES = [
    "Ann",
    "Ben",
    "Cara",
    "Dev",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivan",
    "Jo",
    "Kim",
    "Leo",
    "Mia",
    "Noah",
    "Omar",
    "Pia",
    "Raj",
    "Sara",
    "Tom",
    "Uma",
    "Vic",
    "Wen",
    "Yara",
    "Zoe",
]
THINGS = ["pens", "apples", "books", "tickets", "cups", "shirts", "pencils", "stickers", "plates", "toys"]
SWEETS = ["candies", "marbles", "cookies", "cards", "stickers", "coins", "beads", "grapes"]


def percentages(rng: random.Random) -> Item:
    if rng.random() < 0.7:
        p = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80, 90])
        unit = 100 // _gcd(p, 100)  # base must be a multiple of this for a whole-number answer
        base = unit * rng.randint(1, max(1, 400 // unit))
        r = base * p // 100
        n, prompt = pick(
            rng,
            [
                "What is {p}% of {n}?",
                "Find {p} percent of {n}.",
                "Calculate {p}% of {n}.",
                "How much is {p}% of {n}?",
            ],
            p=p,
            n=base,
        )
        steps = [f"{base} × {p} = {base * p}", f"{base * p} ÷ 100 = {r}"]
        return Item("percent_of", n, prompt, steps, str(r), {"kind": "of", "p": p, "n": base})
    whole = rng.choice([4, 5, 10, 20, 25, 40, 50, 80, 100, 200])
    part = rng.choice([x for x in range(1, whole) if x * 100 % whole == 0])  # whole-number percents only
    p = part * 100 // whole
    n, prompt = pick(
        rng,
        [
            "What percent of {w} is {a}?",
            "{a} is what percent of {w}?",
            "Express {a} out of {w} as a percentage.",
        ],
        a=part,
        w=whole,
    )
    steps = [f"{part} × 100 = {part * 100}", f"{part * 100} ÷ {whole} = {p}"]
    return Item("what_percent", n, prompt, steps, str(p), {"kind": "what_percent", "a": part, "w": whole})


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def discounts(rng: random.Random) -> Item:
    p = rng.choice([10, 20, 25, 30, 40, 50])
    unit = 100 // _gcd(p, 100)
    price = unit * rng.randint(1, max(1, 300 // unit))
    cut = price * p // 100
    if rng.random() < 0.7:
        n, prompt = pick(
            rng,
            [
                "A jacket costs ${c}. It is {p}% off. What is the sale price?",
                "A ${c} game is discounted by {p}%. How much does it cost now?",
                "The price of a lamp is ${c}. With a {p}% discount, what do you pay?",
                "Shoes priced at ${c} are on sale for {p}% off. Find the new price.",
            ],
            c=price,
            p=p,
        )
        steps = [f"Discount: {price} × {p} ÷ 100 = {cut}", f"Sale price: {price} - {cut} = {price - cut}"]
        return Item(
            "discount", n, prompt, steps, str(price - cut), {"kind": "discount", "price": price, "p": p}
        )
    n, prompt = pick(
        rng,
        [
            "A bike costs ${c}. The price rises by {p}%. What is the new price?",
            "A ${c} bill gets a {p}% tip added. What is the total?",
        ],
        c=price,
        p=p,
    )
    steps = [f"Increase: {price} × {p} ÷ 100 = {cut}", f"New price: {price} + {cut} = {price + cut}"]
    return Item("increase", n, prompt, steps, str(price + cut), {"kind": "increase", "price": price, "p": p})


def costs(rng: random.Random) -> Item:
    thing, each, count = rng.choice(THINGS), rng.randint(2, 25), rng.randint(2, 12)
    total = each * count
    kind = rng.randrange(3)
    if kind == 0:
        n, prompt = pick(
            rng,
            [
                "One of the {t} costs ${e}. How much do {k} {t} cost?",
                "{t_} cost ${e} each. What is the price of {k} {t}?",
                "If each of the {t} is ${e}, how much are {k} of them?",
            ],
            t=thing,
            t_=thing.capitalize(),
            e=each,
            k=count,
        )
        return Item(
            "total_cost",
            n,
            prompt,
            mul_steps(each, count),
            str(total),
            {"kind": "total", "each": each, "count": count},
        )
    if kind == 1:
        n, prompt = pick(
            rng,
            [
                "{k} {t} cost ${s} in total. How much does one cost?",
                "You pay ${s} for {k} {t}. What is the price of each?",
            ],
            t=thing,
            k=count,
            s=total,
        )
        return Item(
            "unit_cost",
            n,
            prompt,
            [f"{total} ÷ {count} = {each}"],
            str(each),
            {"kind": "unit", "total": total, "count": count},
        )
    paid = (total // 10 + 1) * 10 + rng.choice([0, 10, 20, 50])
    name = rng.choice(NAMES)
    n, prompt = pick(
        rng,
        [
            "{who} buys {k} {t} at ${e} each and pays with ${m}. How much change does {who} get?",
            "{k} {t} cost ${e} each. {who} hands over ${m}. What is the change?",
        ],
        who=name,
        k=count,
        t=thing,
        e=each,
        m=paid,
    )
    steps = [*mul_steps(each, count), f"{paid} - {total} = {paid - total}"]
    return Item(
        "change",
        n,
        prompt,
        steps,
        str(paid - total),
        {"kind": "change", "each": each, "count": count, "paid": paid},
    )


def sharing(rng: random.Random) -> Item:
    k, each = rng.randint(2, 12), rng.randint(2, 30)
    thing, name = rng.choice(SWEETS), rng.choice(NAMES)
    if rng.random() < 0.6:
        total = k * each
        n, prompt = pick(
            rng,
            [
                "{s} {t} are shared equally among {k} children. How many does each child get?",
                "{who} splits {s} {t} evenly into {k} bags. How many go in each bag?",
                "Divide {s} {t} equally between {k} friends. How many does each friend get?",
            ],
            s=total,
            t=thing,
            k=k,
            who=name,
        )
        return Item(
            "equal_share",
            n,
            prompt,
            [f"{total} ÷ {k} = {each}"],
            str(each),
            {"kind": "share", "total": total, "k": k},
        )
    left = rng.randint(1, k - 1)
    total = k * each + left
    n, prompt = pick(
        rng,
        [
            "{who} shares {s} {t} equally among {k} friends. How many are left over?",
            "{s} {t} are packed {k} to a box. How many are left after filling as many boxes as possible?",
        ],
        s=total,
        t=thing,
        k=k,
        who=name,
    )
    steps = [f"{k} × {each} = {k * each}", f"{total} - {k * each} = {left}"]
    return Item("leftover", n, prompt, steps, str(left), {"kind": "leftover", "total": total, "k": k})


def ages(rng: random.Random) -> Item:
    a, b = rng.sample(NAMES, 2)
    age, d = rng.randint(3, 40), rng.randint(2, 30)
    kind = rng.randrange(4)
    if kind == 0:
        n, prompt = pick(
            rng,
            [
                "{a} is {x} years old. {b} is {d} years older. How old is {b}?",
                "{b} is {d} years older than {a}, who is {x}. What is {b}'s age?",
            ],
            a=a,
            b=b,
            x=age,
            d=d,
        )
        return Item(
            "older",
            n,
            prompt,
            [f"{age} + {d} = {age + d}"],
            str(age + d),
            {"kind": "older", "age": age, "d": d},
        )
    if kind == 1:
        age = age + d
        n, prompt = pick(
            rng,
            [
                "{a} is {x} years old. {b} is {d} years younger. How old is {b}?",
                "{b} is {d} years younger than {a}, who is {x}. How old is {b}?",
            ],
            a=a,
            b=b,
            x=age,
            d=d,
        )
        return Item(
            "younger",
            n,
            prompt,
            [f"{age} - {d} = {age - d}"],
            str(age - d),
            {"kind": "younger", "age": age, "d": d},
        )
    if kind == 2:
        y = rng.randint(2, 20)
        n, prompt = pick(
            rng,
            [
                "{a} is {x} now. How old will {a} be in {y} years?",
                "In {y} years, how old will {a} be if {a} is {x} today?",
            ],
            a=a,
            x=age,
            y=y,
        )
        return Item(
            "future",
            n,
            prompt,
            [f"{age} + {y} = {age + y}"],
            str(age + y),
            {"kind": "future", "age": age, "d": y},
        )
    m = rng.randint(2, 4)
    age = rng.randint(3, 20)
    n, prompt = pick(
        rng,
        [
            "{a} is {x}. {b} is {m} times as old as {a}. How old is {b}?",
            "{b} is {m} times {a}'s age. {a} is {x}. What is {b}'s age?",
        ],
        a=a,
        b=b,
        x=age,
        m=m,
    )
    return Item(
        "times_older", n, prompt, mul_steps(age, m), str(age * m), {"kind": "times", "age": age, "d": m}
    )


def work_rates(rng: random.Random) -> Item:
    r, h = rng.randint(2, 30), rng.randint(2, 12)
    kind = rng.randrange(3)
    if kind == 0:
        n, prompt = pick(
            rng,
            [
                "A machine makes {r} parts per hour. How many parts does it make in {h} hours?",
                "A printer prints {r} pages a minute. How many pages in {h} minutes?",
                "A baker bakes {r} loaves each day. How many loaves in {h} days?",
            ],
            r=r,
            h=h,
        )
        return Item("rate_total", n, prompt, mul_steps(r, h), str(r * h), {"kind": "total", "r": r, "h": h})
    if kind == 1:
        n, prompt = pick(
            rng,
            [
                "A worker paints {r} fences a day. How many days to paint {t} fences?",
                "A pump fills {r} buckets per hour. How many hours to fill {t} buckets?",
            ],
            r=r,
            t=r * h,
        )
        return Item(
            "time_needed", n, prompt, [f"{r * h} ÷ {r} = {h}"], str(h), {"kind": "time", "r": r, "t": r * h}
        )
    s = rng.randint(2, 20)
    n, prompt = pick(
        rng,
        [
            "One worker packs {r} boxes an hour and another packs {s}. Together, how many in {h} hours?",
            "Two taps pour {r} and {s} litres per minute. How many litres together in {h} minutes?",
        ],
        r=r,
        s=s,
        h=h,
    )
    steps = [f"{r} + {s} = {r + s} per unit of time", *mul_steps(r + s, h)]
    return Item("combined", n, prompt, steps, str((r + s) * h), {"kind": "combined", "r": r, "s": s, "h": h})


def distance_speed_time(rng: random.Random) -> Item:
    speed, t = rng.randint(3, 90), rng.randint(2, 9)
    unit, vehicle = rng.choice([("km", "car"), ("miles", "bus"), ("km", "cyclist"), ("miles", "train")])
    rate = "km/h" if unit == "km" else "mph"
    kind = rng.randrange(3)
    if kind == 0:
        n, prompt = pick(
            rng,
            [
                "A {v} travels at {s} {r} for {t} hours. How far does it go?",
                "How many {u} does a {v} cover in {t} hours at {s} {r}?",
            ],
            v=vehicle,
            s=speed,
            r=rate,
            t=t,
            u=unit,
        )
        steps = ["distance = speed × time", *mul_steps(speed, t)]
        return Item(
            "distance", n, prompt, steps, str(speed * t), {"kind": "distance", "speed": speed, "time": t}
        )
    d = speed * t
    if kind == 1:
        n, prompt = pick(
            rng,
            [
                "A {v} goes {d} {u} in {t} hours. What is its speed in {r}?",
                "What average speed covers {d} {u} in {t} hours?",
            ],
            v=vehicle,
            d=d,
            u=unit,
            t=t,
            r=rate,
        )
        steps = ["speed = distance ÷ time", f"{d} ÷ {t} = {speed}"]
        return Item("speed", n, prompt, steps, str(speed), {"kind": "speed", "distance": d, "time": t})
    n, prompt = pick(
        rng,
        [
            "A {v} moves at {s} {r}. How many hours does it take to go {d} {u}?",
            "How long, in hours, is a {d} {u} trip at {s} {r}?",
        ],
        v=vehicle,
        s=speed,
        r=rate,
        d=d,
        u=unit,
    )
    steps = ["time = distance ÷ speed", f"{d} ÷ {speed} = {t}"]
    return Item("time", n, prompt, steps, str(t), {"kind": "time", "distance": d, "speed": speed})


# (big unit, small unit, how many small in one big)
CONVERSIONS = [
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("days", "hours", 24),
    ("weeks", "days", 7),
    ("years", "months", 12),
    ("meters", "centimeters", 100),
    ("kilometers", "meters", 1000),
    ("centimeters", "millimeters", 10),
    ("feet", "inches", 12),
    ("yards", "feet", 3),
    ("kilograms", "grams", 1000),
    ("pounds", "ounces", 16),
    ("liters", "milliliters", 1000),
    ("gallons", "quarts", 4),
    ("quarts", "pints", 2),
    ("pints", "cups", 2),
    ("tons", "kilograms", 1000),
]


def unit_conversion(rng: random.Random) -> Item:
    big, small, factor = rng.choice(CONVERSIONS)
    value = rng.randint(2, 12 if factor >= 100 else 30)
    one = f"1 {big[:-1] if big != 'feet' else 'foot'} = {factor} {small}"
    if rng.random() < 0.55:
        n, prompt = pick(
            rng,
            ["How many {s} are in {v} {b}?", "Convert {v} {b} to {s}.", "{v} {b} is how many {s}?"],
            s=small,
            v=value,
            b=big,
        )
        return Item(
            "to_small",
            n,
            prompt,
            [one, *mul_steps(value, factor)],
            str(value * factor),
            {"value": value, "from": big, "to": small},
        )
    total = value * factor
    n, prompt = pick(
        rng,
        ["How many {b} are {t} {s}?", "Convert {t} {s} to {b}.", "{t} {s} equals how many {b}?"],
        b=big,
        t=total,
        s=small,
    )
    return Item(
        "to_big",
        n,
        prompt,
        [one, f"{total} ÷ {factor} = {value}"],
        str(value),
        {"value": total, "from": small, "to": big},
    )
