#!/usr/bin/env python3
"""Generate meshgate's built-in demo mesh data (small, TPC-H shaped, deterministic).

Usage (from any directory):

    python testdata/generate.py

Needs pyarrow (pinned: pyarrow==26.0.1). The output under testdata/data/ is rewritten
from scratch and is byte-identical on every run: a fixed random seed, fixed row group
size, snappy compression, and no wall-clock values anywhere.

Layout (scale ~ TPC-H SF 0.01):

    data/sales/orders/o_year=YYYY/part-0.parquet   hive-partitioned by order year
    data/sales/lineitem/part-{0,1}.parquet
    data/sales/customer_features/part-0.parquet     daily features per customer (from orders)
    data/customers/customer/customer.parquet
    data/customers/nation/nation.parquet
    data/customers/region/region.parquet
    data/supply/part/part.parquet
    data/supply/partsupp/partsupp.parquet
    data/supply/supplier/supplier.csv               CSV with a header row

The declared schemas in testdata/mesh.yaml and testdata/domains/*/products/*.yaml must
match the Arrow schemas below; keep them in sync when changing either.
"""

import datetime as dt
import os
import random
import shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")

SEED = 42
ROW_GROUP_SIZE = 10_000

N_ORDERS = 15_000
N_CUSTOMERS = 1_500
N_PARTS = 2_000
N_SUPPLIERS = 100
SUPPLIERS_PER_PART = 4
N_CLERKS = 10

START_DATE = dt.date(1992, 1, 1)
END_ORDER_DATE = dt.date(1998, 8, 2)  # TPC-H: 1998-12-31 minus 151 days
CURRENT_DATE = dt.date(1995, 6, 17)  # TPC-H "current date" for flags/status

DEC = pa.decimal128(15, 2)

# --------------------------------------------------------------------------- vocab

REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
NATIONS = [  # (name, regionkey), index = nationkey
    ("ALGERIA", 0), ("ARGENTINA", 1), ("BRAZIL", 1), ("CANADA", 1), ("EGYPT", 4),
    ("ETHIOPIA", 0), ("FRANCE", 3), ("GERMANY", 3), ("INDIA", 2), ("INDONESIA", 2),
    ("IRAN", 4), ("IRAQ", 4), ("JAPAN", 2), ("JORDAN", 4), ("KENYA", 0),
    ("MOROCCO", 0), ("MOZAMBIQUE", 0), ("PERU", 1), ("CHINA", 2), ("ROMANIA", 3),
    ("SAUDI ARABIA", 4), ("VIETNAM", 2), ("RUSSIA", 3), ("UNITED KINGDOM", 3),
    ("UNITED STATES", 1),
]
SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"]
PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]
SHIP_INSTRUCT = ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"]
SHIP_MODES = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"]
TYPE_S1 = ["STANDARD", "SMALL", "MEDIUM", "LARGE", "ECONOMY", "PROMO"]
TYPE_S2 = ["ANODIZED", "BURNISHED", "PLATED", "POLISHED", "BRUSHED"]
TYPE_S3 = ["TIN", "NICKEL", "BRASS", "STEEL", "COPPER"]
CONT_S1 = ["SM", "LG", "MED", "JUMBO", "WRAP"]
CONT_S2 = ["CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM"]
COLORS = [
    "almond", "antique", "aquamarine", "azure", "beige", "bisque", "black", "blanched",
    "blue", "blush", "brown", "burlywood", "burnished", "chartreuse", "chiffon",
    "chocolate", "coral", "cornflower", "cornsilk", "cream", "cyan", "dark", "deep",
    "dim", "dodger", "drab", "firebrick", "floral", "forest", "frosted", "gainsboro",
    "ghost", "goldenrod", "green", "grey", "honeydew", "hot", "indian", "ivory", "khaki",
    "lace", "lavender", "lawn", "lemon", "light", "lime", "linen", "magenta", "maroon",
    "medium", "metallic", "midnight", "mint", "misty", "moccasin", "navajo", "navy",
    "olive", "orange", "orchid", "pale", "papaya", "peach", "peru", "pink", "plum",
    "powder", "puff", "purple", "red", "rose", "rosy", "royal", "saddle", "salmon",
    "sandy", "seashell", "sienna", "sky", "slate", "smoke", "snow", "spring", "steel",
    "tan", "thistle", "tomato", "turquoise", "violet", "wheat", "white", "yellow",
]
NOUNS = [
    "foxes", "ideas", "theodolites", "pinto beans", "instructions", "dependencies",
    "excuses", "platelets", "asymptotes", "courts", "dolphins", "multipliers",
    "sauternes", "warthogs", "frets", "dinos", "attainments", "somas", "packages",
    "requests", "accounts", "deposits", "sheaves", "realms", "pearls", "braids",
]
VERBS = [
    "sleep", "wake", "are", "cajole", "haggle", "nag", "use", "boost", "affix",
    "detect", "integrate", "maintain", "nod", "was", "lose", "sublate", "solve",
    "thrash", "promise", "engage", "hinder", "print", "x-ray", "breach", "eat", "grow",
    "impress", "mold", "poach", "serve", "run", "dazzle", "snooze", "doze", "unwind",
]
ADJECTIVES = [
    "furious", "sly", "careful", "blithe", "quick", "fluffy", "slow", "quiet", "ruthless",
    "thin", "close", "dogged", "daring", "brave", "stealthy", "permanent", "enticing",
    "idle", "busy", "regular", "final", "ironic", "even", "bold", "silent", "pending",
    "express", "special", "unusual",
]
ADVERBS = [
    "sometimes", "always", "never", "furiously", "slyly", "carefully", "blithely",
    "quickly", "fluffily", "slowly", "quietly", "ruthlessly", "thinly", "closely",
    "doggedly", "daringly", "bravely", "stealthily", "permanently", "enticingly",
    "idly", "busily", "regularly", "finally", "ironically", "evenly", "boldly",
    "silently",
]
PREPOSITIONS = [
    "about", "above", "according to", "across", "after", "against", "along",
    "alongside of", "among", "around", "at", "atop", "before", "behind", "beneath",
    "beside", "besides", "between", "beyond", "by", "despite", "during", "except",
    "for", "from", "in place of", "inside", "instead of", "into", "near", "of", "on",
    "outside", "over", "past", "since", "through", "throughout", "to", "toward",
    "under", "until", "up", "upon", "without", "with", "within",
]
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "

rng = random.Random(SEED)


def comment(lo, hi):
    """TPC-H-like pseudo text, between lo and hi characters, no commas or quotes."""
    target = rng.randint(lo, hi)
    words = []
    length = 0
    while length < target:
        kind = rng.random()
        if kind < 0.25:
            w = rng.choice(ADJECTIVES)
        elif kind < 0.5:
            w = rng.choice(NOUNS)
        elif kind < 0.7:
            w = rng.choice(VERBS)
        elif kind < 0.85:
            w = rng.choice(ADVERBS)
        else:
            w = rng.choice(PREPOSITIONS)
        words.append(w)
        length += len(w) + 1
    text = " ".join(words)[:target].rstrip()
    return text + "." if len(text) < hi else text


def address(lo=10, hi=40):
    n = rng.randint(lo, hi)
    s = "".join(rng.choice(ALNUM) for _ in range(n)).strip()
    return s or "x"


def phone(nationkey):
    return "%02d-%03d-%03d-%04d" % (
        nationkey + 10,
        rng.randint(100, 999),
        rng.randint(100, 999),
        rng.randint(1000, 9999),
    )


def money(cents):
    """Exact decimal with two places from an integer number of cents."""
    return Decimal(cents).scaleb(-2)


def random_date(lo, hi):
    return lo + dt.timedelta(days=rng.randint(0, (hi - lo).days))


def retail_price_cents(partkey):
    # TPC-H P_RETAILPRICE formula, in cents.
    return 90000 + ((partkey // 10) % 20001) + 100 * (partkey % 1000)


def part_suppliers(partkey):
    # TPC-H PS_SUPPKEY formula: the SUPPLIERS_PER_PART suppliers of a part.
    s = N_SUPPLIERS
    return [
        (partkey + i * (s // 4 + (partkey - 1) // s)) % s + 1
        for i in range(SUPPLIERS_PER_PART)
    ]


# --------------------------------------------------------------------------- writers


def field(name, typ, nullable=True):
    return pa.field(name, typ, nullable=nullable)


def write_parquet(table, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(
        table,
        path,
        compression="snappy",
        row_group_size=ROW_GROUP_SIZE,
        version="2.6",
        use_dictionary=True,
        write_statistics=True,
        data_page_version="1.0",
    )


def to_table(rows, schema):
    cols = list(zip(*rows)) if rows else [[] for _ in schema]
    arrays = [pa.array(list(c), type=f.type) for c, f in zip(cols, schema)]
    return pa.Table.from_arrays(arrays, schema=schema)


def rel(path):
    return os.path.relpath(path, HERE)


# --------------------------------------------------------------------------- tables

REGION_SCHEMA = pa.schema([
    field("r_regionkey", pa.int64(), False),
    field("r_name", pa.string()),
    field("r_comment", pa.string()),
])
NATION_SCHEMA = pa.schema([
    field("n_nationkey", pa.int64(), False),
    field("n_name", pa.string()),
    field("n_regionkey", pa.int64(), False),
    field("n_comment", pa.string()),
])
CUSTOMER_SCHEMA = pa.schema([
    field("c_custkey", pa.int64(), False),
    field("c_name", pa.string()),
    field("c_address", pa.string()),
    field("c_nationkey", pa.int64(), False),
    field("c_phone", pa.string()),
    field("c_email", pa.string()),
    field("c_acctbal", DEC),
    field("c_mktsegment", pa.string()),
    field("c_comment", pa.string()),
])
PART_SCHEMA = pa.schema([
    field("p_partkey", pa.int64(), False),
    field("p_name", pa.string()),
    field("p_mfgr", pa.string()),
    field("p_brand", pa.string()),
    field("p_type", pa.string()),
    field("p_size", pa.int32()),
    field("p_container", pa.string()),
    field("p_retailprice", DEC),
    field("p_comment", pa.string()),
])
PARTSUPP_SCHEMA = pa.schema([
    field("ps_partkey", pa.int64(), False),
    field("ps_suppkey", pa.int64(), False),
    field("ps_availqty", pa.int32()),
    field("ps_supplycost", DEC),
    field("ps_comment", pa.string()),
])
SUPPLIER_COLUMNS = [
    "s_suppkey", "s_name", "s_address", "s_nationkey", "s_phone", "s_acctbal",
    "s_comment",
]
ORDERS_SCHEMA = pa.schema([  # o_year is the hive partition column, not in the files
    field("o_orderkey", pa.int64(), False),
    field("o_custkey", pa.int64(), False),
    field("o_orderstatus", pa.string()),
    field("o_totalprice", DEC),
    field("o_orderdate", pa.date32()),
    field("o_orderpriority", pa.string()),
    field("o_clerk", pa.string()),
    field("o_shippriority", pa.int32()),
    field("o_comment", pa.string()),
])
LINEITEM_SCHEMA = pa.schema([
    field("l_orderkey", pa.int64(), False),
    field("l_partkey", pa.int64(), False),
    field("l_suppkey", pa.int64(), False),
    field("l_linenumber", pa.int32(), False),
    field("l_quantity", DEC),
    field("l_extendedprice", DEC),
    field("l_discount", DEC),
    field("l_tax", DEC),
    field("l_returnflag", pa.string()),
    field("l_linestatus", pa.string()),
    field("l_shipdate", pa.date32()),
    field("l_commitdate", pa.date32()),
    field("l_receiptdate", pa.date32()),
    field("l_shipinstruct", pa.string()),
    field("l_shipmode", pa.string()),
    field("l_comment", pa.string()),
])


CUSTOMER_FEATURES_SCHEMA = pa.schema([
    field("c_custkey", pa.int64(), False),
    field("feature_date", pa.date32(), False),
    field("created_at", pa.timestamp("us"), False),
    field("orders_90d", pa.int64()),
    field("spend_90d", DEC),
    field("days_since_last_order", pa.int32()),
])

# orders as its first published version (0.9.0) had it.
ORDERS_V0_SCHEMA = pa.schema(list(ORDERS_SCHEMA)[:6])


def gen_region():
    return [(k, name, comment(31, 115)) for k, name in enumerate(REGIONS)]


def gen_nation():
    return [(k, name, rk, comment(31, 114)) for k, (name, rk) in enumerate(NATIONS)]


def gen_customer():
    rows = []
    for k in range(1, N_CUSTOMERS + 1):
        nk = rng.randint(0, len(NATIONS) - 1)
        rows.append((
            k,
            "Customer#%09d" % k,
            address(),
            nk,
            phone(nk),
            "customer%d@example.com" % k,
            money(rng.randint(-99999, 999999)),
            rng.choice(SEGMENTS),
            comment(29, 116),
        ))
    return rows


def gen_part():
    rows = []
    for k in range(1, N_PARTS + 1):
        m = rng.randint(1, 5)
        rows.append((
            k,
            " ".join(rng.sample(COLORS, 5)),
            "Manufacturer#%d" % m,
            "Brand#%d%d" % (m, rng.randint(1, 5)),
            " ".join((rng.choice(TYPE_S1), rng.choice(TYPE_S2), rng.choice(TYPE_S3))),
            rng.randint(1, 50),
            rng.choice(CONT_S1) + " " + rng.choice(CONT_S2),
            money(retail_price_cents(k)),
            comment(5, 22),
        ))
    return rows


def gen_partsupp():
    rows = []
    for pk in range(1, N_PARTS + 1):
        for sk in part_suppliers(pk):
            rows.append((
                pk,
                sk,
                rng.randint(1, 9999),
                money(rng.randint(100, 100000)),
                comment(49, 198),
            ))
    return rows


def gen_supplier():
    rows = []
    for k in range(1, N_SUPPLIERS + 1):
        nk = rng.randint(0, len(NATIONS) - 1)
        rows.append((
            k,
            "Supplier#%09d" % k,
            address(),
            nk,
            phone(nk),
            rng.randint(-99999, 999999) / 100.0,
            comment(25, 100),
        ))
    return rows


def gen_orders_and_lineitems():
    # TPC-H: only customers whose key is not a multiple of 3 place orders.
    custkeys = [k for k in range(1, N_CUSTOMERS + 1) if k % 3 != 0]
    orders, lines = [], []
    for ok in range(1, N_ORDERS + 1):
        odate = random_date(START_DATE, END_ORDER_DATE)
        total = Decimal(0)
        statuses = []
        for ln in range(1, rng.randint(1, 7) + 1):
            pk = rng.randint(1, N_PARTS)
            sk = part_suppliers(pk)[rng.randint(0, SUPPLIERS_PER_PART - 1)]
            qty = rng.randint(1, 50)
            ext = money(qty * retail_price_cents(pk))
            disc = money(rng.randint(0, 10))
            tax = money(rng.randint(0, 8))
            ship = odate + dt.timedelta(days=rng.randint(1, 121))
            commit = odate + dt.timedelta(days=rng.randint(30, 90))
            receipt = ship + dt.timedelta(days=rng.randint(1, 30))
            if receipt <= CURRENT_DATE:
                rflag = "R" if rng.random() < 0.5 else "A"
            else:
                rflag = "N"
            lstatus = "O" if ship > CURRENT_DATE else "F"
            statuses.append(lstatus)
            total += ext * (1 + tax) * (1 - disc)
            lines.append((
                ok, pk, sk, ln, money(qty * 100), ext, disc, tax, rflag, lstatus,
                ship, commit, receipt, rng.choice(SHIP_INSTRUCT),
                rng.choice(SHIP_MODES), comment(10, 43),
            ))
        if all(s == "F" for s in statuses):
            ostatus = "F"
        elif all(s == "O" for s in statuses):
            ostatus = "O"
        else:
            ostatus = "P"
        orders.append((
            ok,
            rng.choice(custkeys),
            ostatus,
            total.quantize(Decimal("0.01")),
            odate,
            rng.choice(PRIORITIES),
            "Clerk#%09d" % rng.randint(1, N_CLERKS),
            0,
            comment(19, 78),
        ))
    return orders, lines


FEATURE_WINDOW = dt.timedelta(days=90)
NIGHTLY_RUN = dt.time(2, 0)  # when the feature job runs, plus a minute per custkey % 60
RERUN = dt.time(9, 30)  # when a day's features were computed a second time
RERUN_EVERY = 601  # every 601st feature row (in file order) was computed twice


def gen_customer_features(orders):
    """sales.customer_features: what a nightly job computes from sales.orders, one row
    per customer per day the customer ordered, dated the day after (feature_date): over
    the 90 days before feature_date, the customer's orders and their total spend, and
    the days between the customer's latest order and the one before it (NULL for a
    first order). Every RERUN_EVERY-th row was computed again the same day (a later
    created_at, different values), alternately because the first run had missed the
    day's last order and because the second run had no spend figures (NULL), so rows
    with the same customer and feature_date exist and the latest created_at is the one
    that counts. Draws nothing from the shared random stream."""
    placed = {}
    for o in orders:
        placed.setdefault(o[1], []).append((o[4], o[3]))
    rows = []
    for custkey in sorted(placed):
        history = sorted(placed[custkey])
        previous = None
        for day in sorted({d for d, _ in history}):
            feature_date = day + dt.timedelta(days=1)
            window = [total for d, total in history if feature_date - FEATURE_WINDOW <= d < feature_date]
            created = dt.datetime.combine(feature_date, NIGHTLY_RUN) + dt.timedelta(minutes=custkey % 60)
            gap = (day - previous).days if previous is not None else None
            rows.append([custkey, feature_date, created, len(window), sum(window, Decimal(0)), gap])
            previous = day
    rows.sort(key=lambda r: (r[1], r[0]))
    reruns = []
    for i in range(0, len(rows), RERUN_EVERY):
        first = rows[i]
        rerun = list(first)
        rerun[2] = dt.datetime.combine(first[1], RERUN)
        if (i // RERUN_EVERY) % 2 == 0:
            # the nightly run missed the day's last order; the rerun has it
            day_total = [t for d, t in placed[first[0]] if d == first[1] - dt.timedelta(days=1)][-1]
            first[3] -= 1
            first[4] -= day_total
        else:
            # the rerun had no spend figures
            rerun[4] = None
        reruns.append(rerun)
    rows = sorted(rows + reruns, key=lambda r: (r[1], r[0], r[2]))
    return [tuple(r) for r in rows]


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)

    # Generation order is fixed: every table draws from the same seeded stream.
    region = gen_region()
    nation = gen_nation()
    customer = gen_customer()
    part = gen_part()
    partsupp = gen_partsupp()
    supplier = gen_supplier()
    orders, lineitem = gen_orders_and_lineitems()

    written = []

    def parquet(rows, schema, *path):
        p = os.path.join(OUT, *path)
        write_parquet(to_table(rows, schema), p)
        written.append((p, len(rows)))

    parquet(region, REGION_SCHEMA, "customers", "region", "region.parquet")
    parquet(nation, NATION_SCHEMA, "customers", "nation", "nation.parquet")
    parquet(customer, CUSTOMER_SCHEMA, "customers", "customer", "customer.parquet")
    parquet(part, PART_SCHEMA, "supply", "part", "part.parquet")
    parquet(partsupp, PARTSUPP_SCHEMA, "supply", "partsupp", "partsupp.parquet")

    # supplier: CSV with a header; values never contain commas, quotes or newlines.
    csv_path = os.path.join(OUT, "supply", "supplier", "supplier.csv")
    os.makedirs(os.path.dirname(csv_path), exist_ok=True)
    with open(csv_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(",".join(SUPPLIER_COLUMNS) + "\n")
        for k, name, addr, nk, ph, bal, cmt in supplier:
            values = [str(k), name, addr, str(nk), ph, "%.2f" % bal, cmt]
            assert not any(c in v for v in values for c in ',"\n\r')
            f.write(",".join(values) + "\n")
    written.append((csv_path, len(supplier)))

    # orders: hive-partitioned by year; o_year itself is not stored in the files.
    by_year = {}
    for row in orders:
        by_year.setdefault(row[4].year, []).append(row)
    for year in sorted(by_year):
        parquet(by_year[year], ORDERS_SCHEMA,
                "sales", "orders", "o_year=%d" % year, "part-0.parquet")

    # orders 0.9.0, the deprecated first version of the product: 1992's orders with
    # the six columns it had then, in one file.
    parquet([r[:6] for r in by_year[1992]], ORDERS_V0_SCHEMA, "sales", "orders_v0", "orders.parquet")

    # lineitem: two files, split by order key.
    half = N_ORDERS // 2
    parquet([r for r in lineitem if r[0] <= half], LINEITEM_SCHEMA,
            "sales", "lineitem", "part-0.parquet")
    parquet([r for r in lineitem if r[0] > half], LINEITEM_SCHEMA,
            "sales", "lineitem", "part-1.parquet")

    # customer_features: a nightly job's output, derived from the orders above.
    parquet(gen_customer_features(orders), CUSTOMER_FEATURES_SCHEMA,
            "sales", "customer_features", "part-0.parquet")

    for p, n in written:
        print("%-48s %7d rows %9d bytes" % (rel(p), n, os.path.getsize(p)))

    # supply.stock_movements, the Delta table (two versions), from supply.partsupp.
    import generate_delta
    generate_delta.main()


if __name__ == "__main__":
    main()
