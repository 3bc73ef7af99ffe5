-- Aggregate functions: statistics, boolean and bitwise aggregates, ordered
-- aggregates (string_agg, array_agg), percentiles and medians, DISTINCT.

-- q: basic_statistics
SELECT count(*) AS n, sum(l_quantity) AS s, min(l_quantity) AS lo, max(l_quantity) AS hi,
       stddev_samp(CAST(l_quantity AS DOUBLE)) AS sd, var_pop(CAST(l_quantity AS DOUBLE)) AS vp
FROM sales.lineitem;

-- q: stddev_aliases
SELECT stddev(CAST(o_totalprice AS DOUBLE)) AS sd, var_samp(CAST(o_totalprice AS DOUBLE)) AS v,
       stddev_pop(CAST(o_totalprice AS DOUBLE)) AS sdp, var_samp(CAST(o_totalprice AS DOUBLE)) AS vs
FROM sales.orders;

-- q: variance_function_missing
-- expect: error Invalid function 'variance'
SELECT variance(CAST(o_totalprice AS DOUBLE)) AS v FROM sales.orders;

-- q: stddev_single_row_is_null
SELECT n_regionkey, stddev_samp(CAST(n_nationkey AS DOUBLE)) AS sd, var_samp(CAST(n_nationkey AS DOUBLE)) AS vs
FROM customers.nation WHERE n_nationkey IN (0, 1, 2, 4) GROUP BY n_regionkey;

-- q: corr_covar_regr
-- tolerance: 1e-7
SELECT corr(CAST(l_quantity AS DOUBLE), CAST(l_extendedprice AS DOUBLE)) AS c,
       covar_samp(CAST(l_quantity AS DOUBLE), CAST(l_extendedprice AS DOUBLE)) AS cs,
       covar_pop(CAST(l_quantity AS DOUBLE), CAST(l_extendedprice AS DOUBLE)) AS cp,
       regr_slope(CAST(l_extendedprice AS DOUBLE), CAST(l_quantity AS DOUBLE)) AS slope,
       regr_intercept(CAST(l_extendedprice AS DOUBLE), CAST(l_quantity AS DOUBLE)) AS intercept
FROM sales.lineitem;

-- q: median_exact
SELECT l_shipmode, median(l_quantity) AS med FROM sales.lineitem GROUP BY l_shipmode;

-- q: median_even_count
SELECT median(n_nationkey) AS m FROM customers.nation WHERE n_nationkey < 10;

-- q: percentile_cont_within_group
SELECT l_returnflag, percentile_cont(0.9) WITHIN GROUP (ORDER BY CAST(l_extendedprice AS DOUBLE)) AS p90 FROM sales.lineitem GROUP BY l_returnflag;

-- q: percentile_cont_interpolates
SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY n_nationkey) AS q1, percentile_cont(0.5) WITHIN GROUP (ORDER BY n_nationkey) AS q2
FROM customers.nation WHERE n_nationkey < 10;

-- q: percentile_disc_within_group
-- expect: error Invalid function 'percentile_disc'
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n_nationkey) AS m, percentile_disc(0.9) WITHIN GROUP (ORDER BY n_nationkey) AS p90
FROM customers.nation;

-- q: bool_and_or
SELECT o_orderstatus, bool_and(o_totalprice > 1000) AS all_over_1k, bool_or(o_totalprice > 400000) AS any_over_400k
FROM sales.orders GROUP BY o_orderstatus;

-- q: bit_aggregates
SELECT n_regionkey, bit_and(n_nationkey) AS a, bit_or(n_nationkey) AS o, bit_xor(n_nationkey) AS x FROM customers.nation GROUP BY n_regionkey;

-- q: array_agg_ordered
SELECT n_regionkey, array_agg(n_nationkey ORDER BY n_nationkey) AS keys FROM customers.nation GROUP BY n_regionkey;

-- q: array_agg_distinct_ordered
SELECT array_agg(DISTINCT n_regionkey ORDER BY n_regionkey) AS regions FROM customers.nation;

-- q: count_distinct_high_cardinality
SELECT count(DISTINCT l_orderkey) AS orders, count(DISTINCT l_partkey) AS parts, count(DISTINCT l_comment) AS comments FROM sales.lineitem;

-- q: count_distinct_expression
SELECT count(DISTINCT extract(year FROM o_orderdate) * 100 + extract(month FROM o_orderdate)) AS months FROM sales.orders;

-- q: avg_integer_is_fractional
SELECT avg(p_size) AS a, avg(ps_availqty) AS b FROM supply.part, (SELECT avg(ps_availqty) AS ps_availqty FROM supply.partsupp) t;

-- q: sum_integer_types
SELECT sum(p_size) AS s32, sum(p_partkey) AS s64 FROM supply.part;

-- q: sum_same_column_two_types
-- expect: error duplicate unqualified field name
SELECT sum(p_size) AS s32, sum(CAST(p_size AS SMALLINT)) AS s16 FROM supply.part;

-- q: min_max_dates_strings
SELECT min(l_shipdate) AS first_ship, max(l_receiptdate) AS last_receipt, min(l_shipmode) AS first_mode, max(l_comment) AS last_comment
FROM sales.lineitem;

-- q: aggregate_of_case
SELECT sum(CASE WHEN l_returnflag = 'R' THEN l_extendedprice ELSE 0 END) AS returned,
       sum(CASE WHEN l_returnflag = 'R' THEN 1 ELSE 0 END) AS returned_lines
FROM sales.lineitem;

-- q: approx_distinct_small
SELECT approx_distinct(n_regionkey) AS regions FROM customers.nation;
-- duckdb:
SELECT approx_count_distinct(n_regionkey) AS regions FROM customers.nation;

-- q: first_value_aggregate_ordered
SELECT n_regionkey, first_value(n_name ORDER BY n_name) AS first_name, last_value(n_name ORDER BY n_name) AS last_name
FROM customers.nation GROUP BY n_regionkey;
-- duckdb:
SELECT n_regionkey, min(n_name) AS first_name, max(n_name) AS last_name FROM customers.nation GROUP BY n_regionkey;

-- q: count_star_on_join_with_filter
SELECT count(*) AS n, count(DISTINCT o.o_custkey) AS customers FROM sales.orders o JOIN sales.lineitem l ON l.l_orderkey = o.o_orderkey
WHERE l.l_shipmode = 'AIR' AND o.o_orderpriority = '1-URGENT';

-- q: aggregate_expressions_combined
-- tolerance: 1e-6
SELECT l_linestatus, sum(l_quantity * l_extendedprice) / sum(l_quantity) AS weighted, max(l_tax) - min(l_tax) AS tax_range
FROM sales.lineitem GROUP BY l_linestatus;

-- q: histogram_buckets
SELECT floor(o_totalprice / 50000) AS bucket, count(*) AS n FROM sales.orders GROUP BY 1;

-- q: width_bucket_manual
-- tolerance: 1e-6
SELECT CASE WHEN p_retailprice < 1000 THEN 'low' WHEN p_retailprice < 1500 THEN 'mid' ELSE 'high' END AS band,
       count(*) AS n, avg(p_retailprice) AS avg_price
FROM supply.part GROUP BY 1;

-- q: sum_over_empty_group_is_null_not_zero
SELECT r.r_regionkey, sum(n.n_nationkey) AS s, count(n.n_nationkey) AS c
FROM customers.region r LEFT JOIN customers.nation n ON n.n_regionkey = r.r_regionkey AND n.n_nationkey > 20
GROUP BY r.r_regionkey;

-- q: grouped_mode
-- expect: error Invalid function 'mode'
SELECT mode() WITHIN GROUP (ORDER BY l_shipmode) AS m FROM sales.lineitem WHERE l_orderkey < 300;
-- duckdb:
SELECT mode(l_shipmode ORDER BY l_shipmode) AS m FROM sales.lineitem WHERE l_orderkey < 300;

-- q: count_distinct_signed_zero
-- known-wrong: count(DISTINCT) on a DOUBLE counts 0.0 and -0.0 as two values (2 here) while GROUP BY, DISTINCT and = treat them as one (DuckDB, PostgreSQL: 1)
SELECT count(DISTINCT s_acctbal * 0) AS n FROM supply.supplier;

-- q: group_by_signed_zero
SELECT count(*) AS groups FROM (SELECT s_acctbal * 0 AS z, count(*) AS c FROM supply.supplier GROUP BY s_acctbal * 0) t;
