-- Window functions and frames: ranking with ties, offsets, value functions under the
-- default frame (peers!), ROWS / RANGE (numeric, decimal and interval offsets) /
-- GROUPS frames, EXCLUDE, IGNORE NULLS, QUALIFY, named windows.

-- q: row_number_per_partition
SELECT n_regionkey, n_name, row_number() OVER (PARTITION BY n_regionkey ORDER BY n_name) AS rn
FROM customers.nation;

-- q: rank_dense_rank_with_ties
SELECT c_custkey, c_nationkey,
       rank() OVER (ORDER BY c_nationkey) AS r, dense_rank() OVER (ORDER BY c_nationkey) AS dr
FROM customers.customer WHERE c_custkey <= 60;

-- q: percent_rank_cume_dist
SELECT n_nationkey, n_regionkey,
       percent_rank() OVER (ORDER BY n_regionkey) AS pr, cume_dist() OVER (ORDER BY n_regionkey) AS cd
FROM customers.nation;

-- q: ntile_uneven
SELECT n_nationkey, ntile(4) OVER (ORDER BY n_nationkey) AS quartile, ntile(7) OVER (ORDER BY n_nationkey DESC) AS seventh
FROM customers.nation;

-- q: lag_lead_defaults
SELECT n_nationkey,
       lag(n_nationkey) OVER (ORDER BY n_nationkey) AS prev,
       lead(n_nationkey, 2) OVER (ORDER BY n_nationkey) AS next2,
       lag(n_nationkey, 1, -1) OVER (PARTITION BY n_regionkey ORDER BY n_nationkey) AS prev_in_region
FROM customers.nation;

-- q: lag_on_dates_gap_days
SELECT o_orderkey, o_orderdate,
       o_orderdate - lag(o_orderdate) OVER (PARTITION BY o_custkey ORDER BY o_orderdate, o_orderkey) AS gap_days
FROM sales.orders WHERE o_custkey < 20;

-- q: first_value_default_frame
SELECT c_custkey, c_nationkey,
       first_value(c_custkey) OVER (PARTITION BY c_nationkey ORDER BY c_acctbal, c_custkey) AS first_cust
FROM customers.customer WHERE c_custkey <= 80;

-- q: max_default_frame_includes_peers
SELECT n_nationkey, n_regionkey,
       max(n_nationkey) OVER (ORDER BY n_regionkey) AS max_through_peers
FROM customers.nation;

-- q: last_value_default_frame_is_current_row
SELECT n_nationkey, last_value(n_name) OVER (ORDER BY n_nationkey) AS last_so_far
FROM customers.nation;

-- q: last_value_whole_partition
SELECT n_nationkey, n_regionkey,
       last_value(n_name) OVER (PARTITION BY n_regionkey ORDER BY n_name
                                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_name
FROM customers.nation;

-- q: nth_value_second
SELECT n_nationkey, n_regionkey,
       nth_value(n_name, 2) OVER (PARTITION BY n_regionkey ORDER BY n_name) AS second_name
FROM customers.nation;

-- q: running_sum_default_frame_with_ties
SELECT n_nationkey, n_regionkey, sum(n_nationkey) OVER (ORDER BY n_regionkey) AS running
FROM customers.nation;

-- q: running_count_rows_frame
SELECT n_nationkey, n_regionkey,
       count(*) OVER (ORDER BY n_regionkey, n_nationkey ROWS UNBOUNDED PRECEDING) AS running
FROM customers.nation;

-- q: rows_sliding_sum
SELECT n_nationkey, sum(n_nationkey) OVER (ORDER BY n_nationkey ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s3
FROM customers.nation;

-- q: rows_centered_avg
SELECT n_nationkey, avg(n_nationkey) OVER (ORDER BY n_nationkey ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS a
FROM customers.nation;

-- q: rows_excluding_current_preceding
SELECT n_nationkey, sum(n_nationkey) OVER (ORDER BY n_nationkey ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
FROM customers.nation;

-- q: rows_following_only
SELECT n_nationkey, max(n_nationkey) OVER (ORDER BY n_nationkey ROWS BETWEEN 1 FOLLOWING AND 3 FOLLOWING) AS ahead
FROM customers.nation;

-- q: rows_offset_larger_than_partition
SELECT n_nationkey, n_regionkey,
       count(*) OVER (PARTITION BY n_regionkey ORDER BY n_nationkey ROWS BETWEEN 10 PRECEDING AND 10 FOLLOWING) AS c
FROM customers.nation;

-- q: range_numeric_offset
SELECT c_custkey, c_nationkey,
       count(*) OVER (ORDER BY c_nationkey RANGE BETWEEN 2 PRECEDING AND 1 FOLLOWING) AS c
FROM customers.customer WHERE c_custkey <= 100;

-- q: range_numeric_offset_desc
SELECT c_custkey, c_nationkey,
       count(*) OVER (ORDER BY c_nationkey DESC RANGE BETWEEN 2 PRECEDING AND CURRENT ROW) AS c
FROM customers.customer WHERE c_custkey <= 100;

-- q: range_decimal_offset
SELECT c_custkey, c_acctbal,
       count(*) OVER (ORDER BY c_acctbal RANGE BETWEEN 500.00 PRECEDING AND 500.00 FOLLOWING) AS near
FROM customers.customer WHERE c_custkey <= 200;

-- q: range_interval_offset_on_date
SELECT o_orderkey, o_orderdate,
       count(*) OVER (ORDER BY o_orderdate RANGE BETWEEN INTERVAL '7' DAY PRECEDING AND CURRENT ROW) AS week_orders
FROM sales.orders WHERE o_custkey < 40;

-- q: range_interval_sum_by_customer
SELECT o_orderkey, o_custkey,
       sum(o_totalprice) OVER (PARTITION BY o_custkey ORDER BY o_orderdate
                               RANGE BETWEEN INTERVAL '365' DAY PRECEDING AND CURRENT ROW) AS trailing_year
FROM sales.orders WHERE o_custkey < 60;

-- q: range_current_to_unbounded_following
SELECT n_nationkey, n_regionkey,
       sum(n_nationkey) OVER (ORDER BY n_regionkey RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS rest
FROM customers.nation;

-- q: range_following_only
SELECT c_custkey, c_nationkey,
       count(*) OVER (ORDER BY c_nationkey RANGE BETWEEN 1 FOLLOWING AND 3 FOLLOWING) AS c
FROM customers.customer WHERE c_custkey <= 100;

-- q: range_offset_with_null_order_keys
SELECT n_nationkey, k,
       count(*) OVER (ORDER BY k NULLS FIRST RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS c
FROM (SELECT n_nationkey, NULLIF(n_regionkey, 2) AS k FROM customers.nation) t;

-- q: groups_frame
SELECT n_nationkey, n_regionkey,
       count(*) OVER (ORDER BY n_regionkey GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS c,
       sum(n_nationkey) OVER (ORDER BY n_regionkey GROUPS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS s
FROM customers.nation;

-- q: groups_frame_preceding_only
SELECT c_custkey, c_nationkey,
       count(*) OVER (ORDER BY c_nationkey GROUPS BETWEEN 2 PRECEDING AND 1 PRECEDING) AS c
FROM customers.customer WHERE c_custkey <= 100;

-- q: exclude_current_row
-- expect: error EXCLUDE
SELECT n_nationkey, sum(n_nationkey) OVER (ORDER BY n_nationkey ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW) AS neighbours
FROM customers.nation;

-- q: exclude_ties
-- expect: error EXCLUDE
SELECT n_nationkey, n_regionkey,
       count(*) OVER (ORDER BY n_regionkey RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE TIES) AS c
FROM customers.nation;

-- q: exclude_group
-- expect: error EXCLUDE
SELECT n_nationkey, n_regionkey,
       count(*) OVER (ORDER BY n_regionkey ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE GROUP) AS others
FROM customers.nation;

-- q: exclude_no_others
-- expect: error EXCLUDE
SELECT n_nationkey, sum(n_nationkey) OVER (ORDER BY n_nationkey ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE NO OTHERS) AS s
FROM customers.nation;

-- q: over_empty_grand_total
SELECT n_nationkey, n_nationkey * 1.0 / sum(n_nationkey) OVER () AS share, count(*) OVER () AS total
FROM customers.nation;

-- q: partition_by_expression
SELECT o_orderkey, count(*) OVER (PARTITION BY extract(year FROM o_orderdate), o_orderpriority) AS same_year_priority
FROM sales.orders WHERE o_custkey < 30;

-- q: window_over_aggregate
SELECT n_regionkey, count(*) AS nations, sum(count(*)) OVER () AS total,
       rank() OVER (ORDER BY count(*) DESC, n_regionkey) AS r
FROM customers.nation GROUP BY n_regionkey;

-- q: top3_per_group
SELECT c_nationkey, c_custkey, c_acctbal FROM (
  SELECT c_nationkey, c_custkey, c_acctbal,
         row_number() OVER (PARTITION BY c_nationkey ORDER BY c_acctbal DESC, c_custkey) AS rn
  FROM customers.customer) t
WHERE rn <= 3;

-- q: qualify_top1
SELECT c_nationkey, c_custkey, c_acctbal FROM customers.customer
QUALIFY row_number() OVER (PARTITION BY c_nationkey ORDER BY c_acctbal DESC, c_custkey) = 1;

-- q: named_window
SELECT n_nationkey, sum(n_nationkey) OVER w AS s, count(*) OVER w AS c
FROM customers.nation WINDOW w AS (PARTITION BY n_regionkey ORDER BY n_nationkey);

-- q: min_max_sliding
SELECT o_orderkey, min(o_totalprice) OVER (ORDER BY o_orderkey ROWS BETWEEN 3 PRECEDING AND 3 FOLLOWING) AS lo,
       max(o_totalprice) OVER (ORDER BY o_orderkey ROWS BETWEEN 3 PRECEDING AND 3 FOLLOWING) AS hi
FROM sales.orders WHERE o_custkey < 30;

-- q: stddev_over_partition
SELECT n_nationkey, stddev_samp(n_nationkey) OVER (PARTITION BY n_regionkey) AS sd,
       var_pop(n_nationkey) OVER (PARTITION BY n_regionkey) AS vp
FROM customers.nation;

-- q: decimal_running_total
SELECT o_orderkey, sum(o_totalprice) OVER (PARTITION BY o_custkey ORDER BY o_orderkey) AS running
FROM sales.orders WHERE o_custkey < 25;

-- q: lag_ignore_nulls
SELECT n_nationkey, lag(k) IGNORE NULLS OVER (ORDER BY n_nationkey) AS prev_non_null
FROM (SELECT n_nationkey, CASE WHEN n_nationkey % 3 = 0 THEN n_nationkey END AS k FROM customers.nation) t;
-- duckdb:
SELECT n_nationkey, lag(k IGNORE NULLS) OVER (ORDER BY n_nationkey) AS prev_non_null
FROM (SELECT n_nationkey, CASE WHEN n_nationkey % 3 = 0 THEN n_nationkey END AS k FROM customers.nation) t;

-- q: first_value_ignore_nulls
SELECT n_nationkey, first_value(k IGNORE NULLS) OVER (ORDER BY n_nationkey ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS f
FROM (SELECT n_nationkey, CASE WHEN n_nationkey > 4 THEN n_nationkey END AS k FROM customers.nation) t;

-- q: lead_with_default_and_partition
SELECT o_orderkey, o_custkey,
       lead(o_totalprice, 1, 0) OVER (PARTITION BY o_custkey ORDER BY o_orderkey) AS next_price
FROM sales.orders WHERE o_custkey < 25;

-- q: row_number_order_desc_nulls
SELECT n_nationkey, row_number() OVER (ORDER BY NULLIF(n_regionkey, 1) DESC NULLS LAST, n_nationkey) AS rn
FROM customers.nation;

-- q: count_distinct_window
SELECT n_nationkey, count(DISTINCT n_regionkey) OVER () AS regions FROM customers.nation;

-- q: window_filter_clause
SELECT n_nationkey, count(*) FILTER (WHERE n_regionkey = 1) OVER (ORDER BY n_nationkey) AS america_so_far
FROM customers.nation;

-- q: cumulative_share_of_revenue
SELECT o_orderpriority, total,
       CAST(sum(total) OVER (ORDER BY total DESC ROWS UNBOUNDED PRECEDING) AS DOUBLE) / CAST(sum(total) OVER () AS DOUBLE) AS cum_share
FROM (SELECT o_orderpriority, sum(o_totalprice) AS total FROM sales.orders GROUP BY o_orderpriority) t;

-- q: moving_average_by_month
SELECT ym, revenue, avg(revenue) OVER (ORDER BY ym ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS ma3
FROM (SELECT extract(year FROM o_orderdate) * 100 + extract(month FROM o_orderdate) AS ym, sum(o_totalprice) AS revenue
      FROM sales.orders GROUP BY 1) t;

-- q: rank_over_rollup_partitioned_by_grouping
SELECT l_returnflag, l_linestatus, count(*) AS n,
       rank() OVER (PARTITION BY grouping(l_linestatus) ORDER BY count(*) DESC) AS r
FROM sales.lineitem GROUP BY ROLLUP (l_returnflag, l_linestatus);
