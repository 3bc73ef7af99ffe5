-- GROUP BY, HAVING, GROUPING SETS / ROLLUP / CUBE (also over keys that are NULL
-- themselves), GROUPING(), DISTINCT ON, grouping by ordinals and expressions.

-- q: group_by_two_keys_having
SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_quantity) AS qty
FROM sales.lineitem GROUP BY l_returnflag, l_linestatus HAVING count(*) > 100;

-- q: having_on_aggregate_not_selected
SELECT o_orderpriority FROM sales.orders GROUP BY o_orderpriority HAVING max(o_totalprice) > 410000;

-- q: having_without_group_by
SELECT count(*) AS n FROM customers.nation HAVING count(*) > 10;

-- q: having_without_group_by_false
SELECT count(*) AS n FROM customers.nation HAVING count(*) > 100;

-- q: group_by_empty_input
SELECT n_regionkey, count(*) AS n FROM customers.nation WHERE n_nationkey < 0 GROUP BY n_regionkey;

-- q: group_by_ordinal
SELECT o_orderstatus, o_orderpriority, count(*) AS n FROM sales.orders GROUP BY 1, 2;

-- q: group_by_expression
SELECT extract(year FROM o_orderdate) AS y, count(*) AS n FROM sales.orders GROUP BY extract(year FROM o_orderdate);

-- q: group_by_select_alias
SELECT extract(month FROM o_orderdate) AS m, count(*) AS n FROM sales.orders GROUP BY m;

-- q: group_by_partition_column
SELECT o_year, count(*) AS n, min(o_orderdate) AS first_day, max(o_orderdate) AS last_day FROM sales.orders GROUP BY o_year;

-- q: multiple_distinct_aggregates
SELECT l_returnflag, count(DISTINCT l_suppkey) AS suppliers, count(DISTINCT l_partkey) AS parts, count(*) AS n
FROM sales.lineitem GROUP BY l_returnflag;

-- q: sum_distinct_avg_distinct
SELECT c_mktsegment, sum(DISTINCT c_nationkey) AS s, avg(DISTINCT c_nationkey) AS a FROM customers.customer GROUP BY c_mktsegment;

-- q: aggregate_filter_clause
SELECT o_orderpriority,
       count(*) FILTER (WHERE o_orderstatus = 'F') AS finished,
       sum(o_totalprice) FILTER (WHERE o_orderstatus = 'O') AS open_value
FROM sales.orders GROUP BY o_orderpriority;

-- q: grouping_sets_basic
SELECT l_returnflag, l_linestatus, count(*) AS n
FROM sales.lineitem GROUP BY GROUPING SETS ((l_returnflag, l_linestatus), (l_returnflag), ());

-- q: rollup_with_grouping
SELECT l_returnflag, l_linestatus, grouping(l_returnflag) AS g_flag, grouping(l_linestatus) AS g_status, count(*) AS n
FROM sales.lineitem GROUP BY ROLLUP (l_returnflag, l_linestatus);

-- q: cube_two_keys
SELECT o_orderstatus, o_orderpriority, count(*) AS n, sum(o_totalprice) AS total
FROM sales.orders GROUP BY CUBE (o_orderstatus, o_orderpriority);

-- q: cube_three_keys_count_groups
SELECT count(*) AS groups, sum(n) AS rows_counted FROM (
  SELECT l_returnflag, l_linestatus, l_shipmode, count(*) AS n
  FROM sales.lineitem GROUP BY CUBE (l_returnflag, l_linestatus, l_shipmode)) t;

-- q: rollup_over_null_keys_grouping_distinguishes
SELECT k, grouping(k) AS g, count(*) AS n
FROM (SELECT NULLIF(n_regionkey, 2) AS k FROM customers.nation) t
GROUP BY ROLLUP (k);

-- q: grouping_sets_null_keys_two_columns
SELECT a, b, grouping(a) AS ga, grouping(b) AS gb, count(*) AS n
FROM (SELECT NULLIF(n_regionkey, 0) AS a, NULLIF(n_nationkey % 2, 1) AS b FROM customers.nation) t
GROUP BY GROUPING SETS ((a, b), (a), (b), ());

-- q: grouping_multi_argument
SELECT l_returnflag, l_linestatus, grouping(l_returnflag, l_linestatus) AS g, count(*) AS n
FROM sales.lineitem GROUP BY ROLLUP (l_returnflag, l_linestatus);

-- q: grouping_sets_duplicate_sets
SELECT l_returnflag, count(*) AS n FROM sales.lineitem GROUP BY GROUPING SETS ((l_returnflag), (l_returnflag));

-- q: rollup_duplicate_with_group_by_key
SELECT o_orderstatus, o_orderpriority, count(*) AS n
FROM sales.orders GROUP BY o_orderstatus, ROLLUP (o_orderstatus, o_orderpriority);

-- q: group_by_key_plus_rollup
SELECT o_orderstatus, o_year, o_orderpriority, count(*) AS n
FROM sales.orders GROUP BY o_orderstatus, ROLLUP (o_year, o_orderpriority);

-- q: rollup_having_on_grouping
SELECT l_returnflag, l_linestatus, count(*) AS n
FROM sales.lineitem GROUP BY ROLLUP (l_returnflag, l_linestatus) HAVING grouping(l_linestatus) = 1;

-- q: rollup_order_by_grouping
-- ordered
SELECT l_returnflag, l_linestatus, count(*) AS n
FROM sales.lineitem GROUP BY ROLLUP (l_returnflag, l_linestatus)
ORDER BY grouping(l_returnflag), l_returnflag, grouping(l_linestatus), l_linestatus;

-- q: grouping_sets_decimal_sums
SELECT c_mktsegment, c_nationkey, sum(c_acctbal) AS bal, avg(c_acctbal) AS avg_bal
FROM customers.customer WHERE c_nationkey < 5
GROUP BY GROUPING SETS ((c_mktsegment), (c_nationkey), ());

-- q: grouping_sets_with_expression_key
SELECT extract(year FROM o_orderdate) AS y, o_orderstatus, count(*) AS n
FROM sales.orders GROUP BY GROUPING SETS ((extract(year FROM o_orderdate)), (o_orderstatus));

-- q: distinct_on
SELECT DISTINCT ON (c_nationkey) c_nationkey, c_custkey, c_acctbal
FROM customers.customer ORDER BY c_nationkey, c_acctbal DESC, c_custkey;

-- q: distinct_on_two_keys
SELECT DISTINCT ON (o_orderstatus, o_orderpriority) o_orderstatus, o_orderpriority, o_orderkey
FROM sales.orders ORDER BY o_orderstatus, o_orderpriority, o_totalprice, o_orderkey;

-- q: distinct_on_ordered_output
-- ordered
SELECT DISTINCT ON (n_regionkey) n_regionkey, n_name FROM customers.nation ORDER BY n_regionkey, n_name DESC;

-- q: select_distinct_multiple_columns
SELECT DISTINCT l_returnflag, l_linestatus, l_shipmode FROM sales.lineitem;

-- q: group_by_boolean_expression
SELECT o_totalprice > 200000 AS big, count(*) AS n FROM sales.orders GROUP BY o_totalprice > 200000;

-- q: group_by_case
SELECT CASE WHEN c_acctbal < 0 THEN 'negative' WHEN c_acctbal < 5000 THEN 'low' ELSE 'high' END AS band, count(*) AS n
FROM customers.customer GROUP BY 1;

-- q: nested_aggregate_in_expression
-- tolerance: 1e-6
SELECT l_shipmode, max(l_extendedprice) - min(l_extendedprice) AS spread, sum(l_quantity) / count(*) AS avg_qty
FROM sales.lineitem GROUP BY l_shipmode;

-- q: group_by_high_cardinality
SELECT l_orderkey, count(*) AS lines, sum(l_extendedprice) AS value FROM sales.lineitem GROUP BY l_orderkey HAVING count(*) = 7;

-- q: group_by_date_then_count
SELECT n, count(*) AS days FROM (SELECT o_orderdate, count(*) AS n FROM sales.orders GROUP BY o_orderdate) t GROUP BY n;

-- q: having_on_select_alias
SELECT o_orderpriority, count(*) AS n FROM sales.orders GROUP BY o_orderpriority HAVING n > 2990;

-- q: filter_clause_decimal_aggregates
SELECT sum(l_extendedprice) FILTER (WHERE l_shipdate > DATE '1998-01-01') AS s,
       max(l_quantity) FILTER (WHERE l_shipmode = 'AIR') AS q
FROM sales.lineitem;
