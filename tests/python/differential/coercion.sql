-- Result types decided by type coercion: CASE branches, window defaults, COALESCE,
-- GREATEST, NULLIF and arithmetic mixing integers, decimals and floats. The value
-- must survive with the wider type.

-- q: case_int_column_else_decimal_column
SELECT c_custkey, CASE WHEN c_custkey % 2 = 0 THEN c_nationkey ELSE c_acctbal END AS v FROM customers.customer WHERE c_custkey < 20;

-- q: simple_case_int_then_decimal_literal
SELECT r_regionkey, CASE r_regionkey WHEN 1 THEN 1 WHEN 2 THEN 2.5 ELSE 3 END AS v FROM customers.region;

-- q: case_decimal_first_then_int
SELECT c_custkey, CASE WHEN c_custkey > 2 THEN c_acctbal ELSE 0 END AS v FROM customers.customer WHERE c_custkey < 20;

-- q: case_null_first_then_int
SELECT r_regionkey, CASE WHEN r_regionkey > 0 THEN NULL ELSE 1 END AS v FROM customers.region;

-- q: lag_default_wider_than_column
-- dialect: a lag/lead default is cast to the column's type: 0.5 becomes 0 in meshgate (CAST truncates), 1 in DuckDB (CAST rounds); PostgreSQL widens the result to numeric. Give a default of the column's type
SELECT n_nationkey, lag(n_nationkey, 1, 0.5) OVER (ORDER BY n_nationkey) AS l FROM customers.nation;

-- q: coalesce_int_and_decimal
SELECT r_regionkey, coalesce(CASE WHEN r_regionkey > 2 THEN r_regionkey END, 0.5) AS c FROM customers.region;

-- q: greatest_int_and_float
SELECT r_regionkey, greatest(r_regionkey, 2.5) AS g, least(r_regionkey, 2.5) AS l FROM customers.region;

-- q: nullif_int_and_float
SELECT r_regionkey, nullif(r_regionkey, 2.5) AS v FROM customers.region;

-- q: int_plus_float_literal
SELECT r_regionkey, r_regionkey + 0.5 AS v, r_regionkey * 1.5 AS w FROM customers.region;

-- q: int32_plus_int64
SELECT p_partkey, p_size + p_partkey AS v, p_size * 3000000000 AS w FROM supply.part WHERE p_partkey < 10;

-- q: decimal_plus_float_column
SELECT s.s_suppkey, s.s_acctbal + p.p_retailprice AS v FROM supply.supplier s JOIN supply.part p ON p.p_partkey = s.s_suppkey WHERE s.s_suppkey < 10;

-- q: intersect_int_and_decimal
SELECT CAST(n_nationkey AS DECIMAL(10, 2)) AS v FROM customers.nation INTERSECT SELECT r_regionkey FROM customers.region;

-- q: except_decimal_and_int
SELECT p_retailprice AS v FROM supply.part WHERE p_partkey < 10 EXCEPT SELECT 901;

-- q: values_mixed_numeric_rows
SELECT * FROM (VALUES (1, 'a'), (2.5, 'b'), (NULL, 'c')) AS t(x, y);

-- q: sum_of_case_mixed
SELECT sum(CASE WHEN l_returnflag = 'R' THEN l_quantity ELSE 0 END) AS returned_qty,
       sum(CASE WHEN l_returnflag = 'R' THEN 1 ELSE 0.5 END) AS weighted
FROM sales.lineitem;
