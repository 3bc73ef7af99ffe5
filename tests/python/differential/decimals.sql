-- Decimal arithmetic: exact sums and products, literals, division scale, rounding,
-- casts between decimals, integers, floats and strings; integer division and modulo.

-- q: sum_decimal_exact
SELECT sum(l_extendedprice) AS s, sum(l_quantity) AS q, sum(l_discount) AS d FROM sales.lineitem;

-- q: sum_product_exact
SELECT l_returnflag, sum(l_extendedprice * (1 - l_discount)) AS disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS charge
FROM sales.lineitem GROUP BY l_returnflag;

-- q: min_max_decimal
SELECT min(c_acctbal) AS lo, max(c_acctbal) AS hi, min(o.o_totalprice) AS lo_order
FROM customers.customer, (SELECT min(o_totalprice) AS o_totalprice FROM sales.orders) o;

-- q: avg_decimal
-- tolerance: 1e-6
-- avg of a decimal: DECIMAL(19,6) in meshgate, DOUBLE in DuckDB
SELECT c_mktsegment, avg(c_acctbal) AS a FROM customers.customer GROUP BY c_mktsegment;

-- q: avg_decimal_fraction_truncated
-- known-wrong: avg of a DECIMAL(15,2) is DECIMAL(19,6), truncated rather than rounded: avg(l_discount) = 0.050075 where the mean is 0.05007534...; in TPC-H Q1 0.0503907 comes back as 0.050390 (truncated)
SELECT avg(l_discount) AS avg_disc, avg(l_tax) AS avg_tax FROM sales.lineitem;

-- q: decimal_literal_sum_is_exact
-- known-wrong: numeric literals with a fraction are parsed as Float64 (DataFusion's sql_parser.parse_float_as_decimal is false), so 0.1 + 0.2 = 0.3 is false; exact numeric literals are DECIMAL in the standard
SELECT 0.1 + 0.2 = 0.3 AS exact, 0.1 + 0.2 AS s;

-- q: decimal_literal_range_filter
SELECT count(*) AS n, sum(l_extendedprice * l_discount) AS revenue FROM sales.lineitem
WHERE l_discount BETWEEN 0.06 - 0.01 AND 0.06 + 0.01 AND l_quantity < 24;

-- q: decimal_column_equals_literal
SELECT count(*) AS n FROM sales.lineitem WHERE l_discount = 0.07;

-- q: decimal_column_equals_computed_literal
SELECT count(*) AS n FROM sales.lineitem WHERE l_discount = 0.1 - 0.03;

-- q: decimal_times_literal
SELECT sum(l_extendedprice * 0.1) AS tenth FROM sales.lineitem;

-- q: decimal_cast_literal_arithmetic
SELECT CAST(0.1 AS DECIMAL(10, 2)) + CAST(0.2 AS DECIMAL(10, 2)) AS s,
       CAST(1.05 AS DECIMAL(10, 2)) * CAST(3 AS DECIMAL(10, 2)) AS p;

-- q: decimal_division_ratio
-- tolerance: 1e-6
SELECT l_shipmode, sum(l_extendedprice) / sum(l_quantity) AS price_per_unit FROM sales.lineitem GROUP BY l_shipmode;

-- q: decimal_division_two_thirds
-- known-wrong: decimal / decimal is truncated to 6 decimal places (Decimal128(p, 6)): 0.666666
SELECT CAST(2 AS DECIMAL(15, 2)) / CAST(3 AS DECIMAL(15, 2)) AS q;
-- duckdb:
SELECT CAST(2 AS DOUBLE) / 3 AS q;

-- q: decimal_division_tiny_ratio
-- known-wrong: decimal / decimal is truncated to 6 decimal places: 1 / 3,000,000 becomes 0.000000
SELECT CAST(1 AS DECIMAL(15, 2)) / CAST(3000000 AS DECIMAL(15, 2)) AS q;
-- duckdb:
SELECT CAST(1 AS DOUBLE) / 3000000 AS q;

-- q: decimal_division_per_mille
-- known-wrong: decimal / decimal is truncated to 6 decimal places: each order's share of its customer's total loses digits
SELECT o_orderkey, o_totalprice / (SELECT sum(o_totalprice) FROM sales.orders) AS share
FROM sales.orders WHERE o_custkey < 10;
-- duckdb:
SELECT o_orderkey, CAST(o_totalprice AS DOUBLE) / (SELECT sum(o_totalprice) FROM sales.orders) AS share
FROM sales.orders WHERE o_custkey < 10;

-- q: decimal_division_as_double
SELECT l_shipmode, CAST(sum(l_extendedprice) AS DOUBLE) / CAST(sum(l_quantity) AS DOUBLE) AS price_per_unit
FROM sales.lineitem GROUP BY l_shipmode;

-- q: decimal_times_float_literal_ratio
SELECT 100.0 * sum(CASE WHEN l_shipmode = 'AIR' THEN l_extendedprice ELSE 0 END) / sum(l_extendedprice) AS air_share
FROM sales.lineitem;

-- q: decimal_modulo
SELECT count(*) AS n, sum(l_extendedprice % 100) AS s FROM sales.lineitem WHERE l_orderkey < 1000;

-- q: decimal_negative_values
SELECT count(*) AS n, sum(c_acctbal) AS s, min(abs(c_acctbal)) AS smallest FROM customers.customer WHERE c_acctbal < 0;

-- q: decimal_sign_abs
SELECT c_custkey, abs(c_acctbal) AS a, signum(c_acctbal) AS s FROM customers.customer WHERE c_custkey <= 20;
-- duckdb:
SELECT c_custkey, abs(c_acctbal) AS a, sign(c_acctbal) AS s FROM customers.customer WHERE c_custkey <= 20;

-- q: round_decimal_to_one_place
SELECT c_custkey, c_acctbal, round(c_acctbal, 1) AS r FROM customers.customer WHERE c_custkey <= 200;

-- q: round_decimal_half_cases
SELECT round(CAST(2.25 AS DECIMAL(10, 2)), 1) AS a, round(CAST(2.35 AS DECIMAL(10, 2)), 1) AS b,
       round(CAST(-2.25 AS DECIMAL(10, 2)), 1) AS c, round(CAST(0.15 AS DECIMAL(10, 2)), 1) AS d,
       round(CAST(1.005 AS DECIMAL(10, 3)), 2) AS e;

-- q: round_decimal_to_integer
SELECT round(CAST(2.5 AS DECIMAL(10, 1))) AS a, round(CAST(-2.5 AS DECIMAL(10, 1))) AS b, round(CAST(3.5 AS DECIMAL(10, 1))) AS c;

-- q: round_sum_of_rounded
SELECT sum(round(l_extendedprice, 1)) AS s, sum(round(l_extendedprice, -2)) AS h FROM sales.lineitem;

-- q: round_float_half_cases
SELECT round(CAST(2.5 AS DOUBLE)) AS a, round(CAST(-2.5 AS DOUBLE)) AS b, round(CAST(0.125 AS DOUBLE), 2) AS c;

-- q: trunc_floor_ceil_decimal
SELECT c_custkey, floor(c_acctbal) AS f, ceil(c_acctbal) AS c, trunc(c_acctbal) AS t
FROM customers.customer WHERE c_custkey <= 30;

-- q: cast_decimal_to_integer
-- dialect: CAST of a decimal to an integer truncates in meshgate (DataFusion) and rounds in DuckDB and PostgreSQL (implementation-defined in the standard); see cast_decimal_round_then_integer
SELECT c_custkey, c_acctbal, CAST(c_acctbal AS BIGINT) AS i FROM customers.customer WHERE c_custkey <= 40;

-- q: cast_decimal_half_to_integer
-- dialect: CAST of a decimal to an integer truncates in meshgate (DataFusion) and rounds half away from zero in DuckDB and PostgreSQL (the SQL standard leaves it implementation-defined); write round() or trunc() to say which
SELECT CAST(CAST(2.5 AS DECIMAL(10, 1)) AS INT) AS a, CAST(CAST(-2.5 AS DECIMAL(10, 1)) AS INT) AS b,
       CAST(CAST(2.7 AS DECIMAL(10, 1)) AS INT) AS c;

-- q: cast_double_to_integer
-- dialect: CAST of a DOUBLE to an integer truncates in meshgate (DataFusion) and rounds in DuckDB and PostgreSQL; write round() or trunc() to say which
SELECT CAST(CAST(2.7 AS DOUBLE) AS INT) AS a, CAST(CAST(-2.7 AS DOUBLE) AS INT) AS b;

-- q: cast_decimal_round_then_integer
SELECT c_custkey, CAST(round(c_acctbal) AS BIGINT) AS r, CAST(trunc(c_acctbal) AS BIGINT) AS t, CAST(floor(c_acctbal) AS BIGINT) AS f
FROM customers.customer WHERE c_custkey <= 40;

-- q: cast_double_round_then_integer
SELECT CAST(round(CAST(2.7 AS DOUBLE)) AS INT) AS a, CAST(trunc(CAST(-2.7 AS DOUBLE)) AS INT) AS b, CAST(round(s_acctbal) AS BIGINT) AS c
FROM supply.supplier WHERE s_suppkey <= 10;

-- q: cast_decimal_lower_scale
SELECT c_custkey, c_acctbal, CAST(c_acctbal AS DECIMAL(15, 1)) AS one_place FROM customers.customer WHERE c_custkey <= 40;

-- q: cast_string_to_decimal_rounds
SELECT CAST('12.345' AS DECIMAL(10, 2)) AS a, CAST('-12.345' AS DECIMAL(10, 2)) AS b, CAST('0.005' AS DECIMAL(10, 2)) AS c;

-- q: cast_decimal_to_string
SELECT c_custkey, CAST(c_acctbal AS VARCHAR) AS s FROM customers.customer WHERE c_custkey <= 20;

-- q: cast_decimal_to_double
SELECT sum(CAST(l_extendedprice AS DOUBLE)) AS s FROM sales.lineitem;

-- q: decimal_compare_with_double_column
SELECT count(*) AS n FROM supply.supplier s JOIN customers.customer c ON c.c_acctbal > s.s_acctbal
WHERE s.s_suppkey <= 5 AND c.c_custkey <= 100;

-- q: decimal_precision_growth
SELECT sum(l_extendedprice * l_quantity * l_quantity) AS big FROM sales.lineitem;

-- q: integer_division
-- dialect: `/` on integers is integer division in meshgate (DataFusion, like PostgreSQL) and float division in DuckDB (whose integer division is `//`)
SELECT p_partkey, p_size / 4 AS q FROM supply.part WHERE p_partkey <= 20;

-- q: integer_division_spelled_out
SELECT p_partkey, p_size / 4 AS q, -p_size / 4 AS nq FROM supply.part WHERE p_partkey <= 20;
-- duckdb:
SELECT p_partkey, CAST(trunc(p_size / 4) AS INT) AS q, CAST(trunc(-p_size / 4) AS INT) AS nq FROM supply.part WHERE p_partkey <= 20;

-- q: integer_division_as_double
SELECT p_partkey, CAST(p_size AS DOUBLE) / 4 AS q FROM supply.part WHERE p_partkey <= 20;

-- q: integer_modulo_negative
SELECT p_partkey, p_size % 7 AS m, -p_size % 7 AS nm, p_size % -7 AS mn FROM supply.part WHERE p_partkey <= 20;

-- q: division_by_zero
-- expect: error divide by zero
SELECT p_size / (p_size - p_size) AS boom FROM supply.part WHERE p_partkey <= 5;

-- q: division_by_nullif_zero
SELECT p_partkey, p_retailprice / NULLIF(p_size - p_size, 0) AS safe FROM supply.part WHERE p_partkey <= 5;

-- q: numeric_functions
SELECT p_partkey, sqrt(p_size) AS sq, power(p_size, 2) AS pw, ln(p_size) AS l, exp(p_size / 50.0) AS e, abs(-p_size) AS a
FROM supply.part WHERE p_partkey <= 20;

-- q: stddev_variance_decimal
SELECT stddev_samp(l_quantity) AS sd, var_samp(l_extendedprice) AS v, stddev_pop(l_discount) AS sdp FROM sales.lineitem;

-- q: decimal_in_list_of_literals
SELECT count(*) AS n FROM sales.lineitem WHERE l_discount IN (0.05, 0.06) AND l_tax NOT IN (0.00, 0.08);

-- q: decimal_equals_fraction_literal
-- known-wrong: a literal with a fraction is a Float64 and is compared with a DECIMAL column as Decimal128(30, 15) of the binary float: 156028.63 becomes 156028.630000000008192 and matches nothing (7.7% of lineitem prices do not equal their own value written as a literal)
SELECT count(*) AS n FROM sales.orders WHERE o_totalprice = 156028.63;

-- q: decimal_in_list_fraction_literals
-- known-wrong: fraction literals are Float64 and compared as Decimal128(30, 15) of the binary float: 156028.63 matches nothing, 49816.57 matches
SELECT count(*) AS n FROM sales.orders WHERE o_totalprice IN (156028.63, 49816.57);

-- q: decimal_range_from_fraction_literal
-- known-wrong: fraction literals are Float64: o_totalprice >= 156028.63 compares with 156028.630000000008192 and drops the order whose total is exactly 156028.63
SELECT count(*) AS n FROM sales.orders WHERE o_totalprice >= 156028.63 AND o_totalprice < 156028.64;

-- q: decimal_between_same_fraction_literal
-- known-wrong: fraction literals are Float64: BETWEEN 156028.63 AND 156028.63 misses the exact value
SELECT count(*) AS n FROM sales.orders WHERE o_totalprice BETWEEN 156028.63 AND 156028.63;

-- q: decimal_equals_cast_string_literal
SELECT count(*) AS n FROM sales.orders WHERE o_totalprice = CAST('156028.63' AS DECIMAL(15, 2));

-- q: decimal_equals_literal_small_values
SELECT count(*) AS n FROM customers.customer WHERE c_acctbal = 9224.67 OR c_acctbal = -247.14;

-- q: large_fraction_literal_precision
-- known-wrong: 12345678901234567.89 is parsed as a Float64 (1.2345678901234568e16) and its CAST to DECIMAL(20, 2) gives 12345678901234567.68
SELECT CAST(12345678901234567.89 AS DECIMAL(20, 2)) AS y;

-- q: cast_fraction_literal_to_decimal_rounds
-- known-wrong: 1.005 is parsed as a Float64 (1.00499999...) so CAST(1.005 AS DECIMAL(10, 2)) is 1.00; as an exact literal it rounds to 1.01
SELECT CAST(2.675 AS DECIMAL(10, 2)) AS a, CAST(1.005 AS DECIMAL(10, 2)) AS b, CAST(0.125 AS DECIMAL(10, 2)) AS c;
