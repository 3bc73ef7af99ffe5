-- The hive partition column sales.orders.o_year (from directory names, int32): filters
-- that prune, expressions on it, joins and aggregates over it.

-- q: partition_equality_filter
SELECT count(*) AS n, sum(o_totalprice) AS total FROM sales.orders WHERE o_year = 1995;

-- q: partition_range_filter
SELECT o_year, count(*) AS n FROM sales.orders WHERE o_year BETWEEN 1993 AND 1996 GROUP BY o_year;

-- q: partition_in_list
SELECT count(*) AS n FROM sales.orders WHERE o_year IN (1992, 1998);

-- q: partition_string_literal
SELECT count(*) AS n FROM sales.orders WHERE o_year = '1997';

-- q: partition_expression_filter
SELECT count(*) AS n FROM sales.orders WHERE o_year % 2 = 0;

-- q: partition_not_equal_and_null_check
SELECT count(*) AS n FROM sales.orders WHERE o_year <> 1995 AND o_year IS NOT NULL;

-- q: partition_distinct_and_minmax
SELECT count(DISTINCT o_year) AS years, min(o_year) AS first_year, max(o_year) AS last_year FROM sales.orders;

-- q: partition_with_row_filter_on_data
SELECT o_year, o_orderstatus, count(*) AS n FROM sales.orders WHERE o_year >= 1996 AND o_totalprice > 200000 GROUP BY o_year, o_orderstatus;

-- q: partition_join_lineitem
SELECT o.o_year, count(*) AS lines, sum(l.l_quantity) AS qty
FROM sales.orders o JOIN sales.lineitem l ON l.l_orderkey = o.o_orderkey WHERE o.o_year < 1994 GROUP BY o.o_year;

-- q: partition_column_arithmetic
SELECT o_year - 1990 AS years_since, count(*) AS n FROM sales.orders GROUP BY o_year - 1990;

-- q: partition_window
SELECT o_year, n, sum(n) OVER (ORDER BY o_year) AS running FROM (SELECT o_year, count(*) AS n FROM sales.orders GROUP BY o_year) t;

-- q: partition_or_data_filter
SELECT count(*) AS n FROM sales.orders WHERE o_year = 1992 OR o_orderpriority = '1-URGENT';

-- q: partition_no_matching_partition
SELECT count(*) AS n, sum(o_totalprice) AS s FROM sales.orders WHERE o_year = 2001;

-- q: partition_cast_to_string
SELECT CAST(o_year AS VARCHAR) || '-Q' || CAST(extract(quarter FROM o_orderdate) AS VARCHAR) AS yq, count(*) AS n
FROM sales.orders WHERE o_year = 1994 GROUP BY 1;
