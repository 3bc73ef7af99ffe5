-- Integer overflow: a result that does not fit its type must fail, never wrap.

-- q: int64_literal_overflow
-- known-wrong: BIGINT + BIGINT wraps around: 9223372036854775807 + 1 returns -9223372036854775808
-- expect: error overflow
SELECT 9223372036854775807 + 1 AS wrapped;

-- q: int32_cast_overflow_add
-- known-wrong: INT + INT wraps around: 2147483647 + 1 returns -2147483648
-- expect: error overflow
SELECT CAST(2147483647 AS INT) + CAST(1 AS INT) AS wrapped;

-- q: int32_column_product_overflow
-- known-wrong: INT * INT on columns wraps around: returns 2146689000, a wrapped value (DuckDB: Overflow in multiplication of INT32)
-- expect: error overflow
SELECT max(ps_availqty * ps_availqty * ps_availqty) AS cubed FROM supply.partsupp;

-- q: int64_column_product_overflow
-- known-wrong: BIGINT * BIGINT on columns wraps around (returns 9223000000000000000 from wrapped products; DuckDB: Overflow in multiplication of INT64)
-- expect: error overflow
SELECT max(o_orderkey * 1000000000000000) AS big FROM sales.orders;

-- q: int64_sum_overflow
-- known-wrong: sum(BIGINT) wraps around: returns -1763884962826485760; DuckDB sums into HUGEINT (11250750000000000000000), PostgreSQL into NUMERIC
-- expect: error overflow
SELECT sum(o_orderkey * 100000000000000) AS total FROM sales.orders;

-- q: int32_sum_widens
SELECT sum(ps_availqty) AS s, sum(CAST(ps_availqty AS BIGINT) * ps_availqty) AS sq FROM supply.partsupp;

-- q: int64_product_in_range
SELECT max(o_orderkey * 100000000000000) AS big FROM sales.orders;

-- q: int32_product_widened_by_cast
SELECT max(CAST(ps_availqty AS BIGINT) * ps_availqty * ps_availqty) AS cubed FROM supply.partsupp;

-- q: int_negation_overflow
-- expect: error overflow
SELECT -CAST(-9223372036854775808 AS BIGINT) AS negated;

-- q: abs_min_int_overflow
-- expect: error overflow
SELECT abs(CAST(-2147483648 AS INT)) AS a;

-- q: cast_bigint_to_int_out_of_range
-- expect: error Can't cast value
SELECT CAST(o_orderkey * 1000000 AS INT) AS narrowed FROM sales.orders WHERE o_orderkey > 14000;

-- q: cast_string_to_int_invalid
-- expect: error Cannot cast string
SELECT CAST(n_name AS INT) AS bad FROM customers.nation;

-- q: decimal_overflow_multiplication
-- expect: error overflow
SELECT CAST(99999999999999999999 AS DECIMAL(38, 0)) * CAST(99999999999999999999 AS DECIMAL(38, 0)) AS too_big;

-- q: decimal38_sum_overflow
-- known-wrong: sum of DECIMAL(38, 0) wraps around: 25 x 9e37 returns -131976568446569244243622252022377480192 (DuckDB: overflow error)
-- expect: error overflow
SELECT sum(CAST('90000000000000000000000000000000000000' AS DECIMAL(38, 0))) AS s FROM customers.nation;

-- q: decimal38_addition_overflow
-- known-wrong: 99999999999999999999999999999999999999 + 1 returns a 39-digit value in a DECIMAL(38, 0) column (DuckDB: overflow error)
-- expect: error overflow
SELECT CAST('99999999999999999999999999999999999999' AS DECIMAL(38, 0)) + 1 AS s;

-- q: decimal38_avg_overflow
-- expect: error Overflow
SELECT avg(x) AS a FROM (SELECT CAST('99999999999999999999999999999999999999' AS DECIMAL(38, 0)) AS x FROM customers.region) t;
