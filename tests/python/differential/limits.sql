-- LIMIT / OFFSET / FETCH (with ties), sampling, ORDER BY forms, DISTINCT with
-- ORDER BY, top-N per query.

-- q: limit_with_total_order
-- ordered
SELECT o_orderkey, o_totalprice FROM sales.orders ORDER BY o_totalprice DESC, o_orderkey LIMIT 10;

-- q: limit_offset
-- ordered
SELECT o_orderkey FROM sales.orders ORDER BY o_orderkey LIMIT 5 OFFSET 100;

-- q: offset_without_limit
-- ordered
SELECT n_nationkey FROM customers.nation ORDER BY n_nationkey OFFSET 20;

-- q: offset_beyond_rows
SELECT n_nationkey FROM customers.nation ORDER BY n_nationkey LIMIT 5 OFFSET 30;

-- q: limit_zero
SELECT n_nationkey, n_name FROM customers.nation LIMIT 0;

-- q: fetch_first_rows_only
-- expect: error FETCH clause is not supported
-- ordered
SELECT n_nationkey FROM customers.nation ORDER BY n_nationkey DESC FETCH FIRST 3 ROWS ONLY;

-- q: offset_rows_fetch_next
-- expect: error FETCH clause is not supported
-- ordered
SELECT n_nationkey FROM customers.nation ORDER BY n_nationkey OFFSET 5 ROWS FETCH NEXT 4 ROWS ONLY;

-- q: fetch_first_with_ties
-- expect: error FETCH clause is not supported
SELECT n_nationkey, n_regionkey FROM customers.nation ORDER BY n_regionkey FETCH FIRST 3 ROWS WITH TIES;

-- q: fetch_first_with_ties_count
-- expect: error FETCH clause is not supported
SELECT count(*) AS n FROM (SELECT c_custkey FROM customers.customer ORDER BY c_nationkey FETCH FIRST 10 ROWS WITH TIES) t;

-- q: limit_in_subquery_then_aggregate
SELECT sum(o_totalprice) AS top100 FROM (SELECT o_totalprice FROM sales.orders ORDER BY o_totalprice DESC, o_orderkey LIMIT 100) t;

-- q: limit_in_cte_joined
WITH top_customers AS (SELECT o_custkey, sum(o_totalprice) AS s FROM sales.orders GROUP BY o_custkey ORDER BY s DESC, o_custkey LIMIT 5)
SELECT c.c_custkey, c.c_mktsegment, t.s FROM top_customers t JOIN customers.customer c ON c.c_custkey = t.o_custkey;

-- q: order_by_ordinal_and_alias
-- ordered
SELECT n_regionkey AS r, count(*) AS n FROM customers.nation GROUP BY n_regionkey ORDER BY 2 DESC, r;

-- q: order_by_expression_not_selected
-- ordered
SELECT n_name FROM customers.nation ORDER BY length(n_name), n_name;

-- q: order_by_case_expression
-- ordered
SELECT n_name, n_regionkey FROM customers.nation ORDER BY CASE WHEN n_regionkey = 3 THEN 0 ELSE 1 END, n_name;

-- q: distinct_order_by
-- ordered
SELECT DISTINCT l_shipmode FROM sales.lineitem ORDER BY l_shipmode DESC;

-- q: order_by_date_then_key_limit
-- ordered
SELECT o_orderkey, o_orderdate FROM sales.orders ORDER BY o_orderdate DESC, o_orderkey DESC LIMIT 12;

-- q: order_by_decimal_with_negatives
-- ordered
SELECT c_custkey, c_acctbal FROM customers.customer ORDER BY c_acctbal, c_custkey LIMIT 8;

-- q: order_by_mixed_directions
-- ordered
SELECT o_orderpriority, o_orderstatus, count(*) AS n FROM sales.orders GROUP BY 1, 2 ORDER BY o_orderpriority DESC, o_orderstatus ASC;

-- q: tablesample_bernoulli
-- expect: refused TABLESAMPLE
SELECT count(*) AS n FROM sales.orders TABLESAMPLE BERNOULLI (10);

-- q: tablesample_system
-- expect: refused TABLESAMPLE
SELECT count(*) AS n FROM sales.lineitem TABLESAMPLE SYSTEM (1);

-- q: tablesample_in_join
-- expect: refused TABLESAMPLE
SELECT count(*) AS n FROM sales.orders o TABLESAMPLE BERNOULLI (50) JOIN customers.customer c ON c.c_custkey = o.o_custkey;

-- q: deterministic_sample_by_hash
SELECT count(*) AS n FROM sales.orders WHERE o_orderkey % 10 = 3;

-- q: select_star_exclude
SELECT * EXCLUDE (n_comment) FROM customers.nation;

-- q: top_n_per_group_with_rank_ties
SELECT c_nationkey, c_mktsegment, n FROM (
  SELECT c_nationkey, c_mktsegment, count(*) AS n, rank() OVER (PARTITION BY c_nationkey ORDER BY count(*) DESC) AS r
  FROM customers.customer GROUP BY c_nationkey, c_mktsegment) t
WHERE r = 1;
