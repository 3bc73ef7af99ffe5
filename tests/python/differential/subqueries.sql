-- Subqueries of every kind: scalar (correlated and not), EXISTS, IN / NOT IN with
-- NULLs, quantified comparisons, derived tables, CTEs.

-- q: scalar_uncorrelated_in_where
SELECT count(*) AS n FROM sales.orders
WHERE o_totalprice > (SELECT avg(o_totalprice) FROM sales.orders);

-- q: scalar_uncorrelated_in_select
SELECT r_name, (SELECT count(*) FROM customers.nation) AS nations FROM customers.region;

-- q: scalar_correlated_count_zero_for_none
SELECT c.c_custkey,
       (SELECT count(*) FROM sales.orders o WHERE o.o_custkey = c.c_custkey) AS n_orders
FROM customers.customer c WHERE c.c_custkey <= 30;

-- q: scalar_correlated_sum_null_for_none
SELECT c.c_custkey,
       (SELECT sum(o.o_totalprice) FROM sales.orders o WHERE o.o_custkey = c.c_custkey) AS spent
FROM customers.customer c WHERE c.c_custkey <= 30;

-- q: scalar_correlated_count_in_where
SELECT count(*) AS n FROM customers.customer c
WHERE (SELECT count(*) FROM sales.orders o WHERE o.o_custkey = c.c_custkey) = 0;

-- q: scalar_correlated_count_compare
SELECT count(*) AS n FROM customers.customer c
WHERE (SELECT count(*) FROM sales.orders o WHERE o.o_custkey = c.c_custkey) < 5;

-- q: scalar_correlated_coalesce_count
SELECT c.c_custkey,
       coalesce((SELECT count(*) FROM sales.orders o WHERE o.o_custkey = c.c_custkey), -1) AS n
FROM customers.customer c WHERE c.c_custkey <= 12;

-- q: scalar_correlated_count_plus_one
SELECT c.c_custkey,
       (SELECT count(*) + 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey) AS n
FROM customers.customer c WHERE c.c_custkey <= 12;

-- q: scalar_correlated_max_in_where
SELECT o.o_orderkey, o.o_custkey, o.o_totalprice FROM sales.orders o
WHERE o.o_custkey < 50
  AND o.o_totalprice = (SELECT max(o2.o_totalprice) FROM sales.orders o2 WHERE o2.o_custkey = o.o_custkey);

-- q: scalar_correlated_avg_above
SELECT count(*) AS n FROM sales.lineitem l
WHERE l.l_quantity > (SELECT avg(l2.l_quantity) FROM sales.lineitem l2 WHERE l2.l_partkey = l.l_partkey);

-- q: scalar_correlated_non_equi
-- expect: error does not support logical expression ScalarSubquery
SELECT n.n_nationkey,
       (SELECT count(*) FROM customers.nation n2 WHERE n2.n_nationkey < n.n_nationkey) AS smaller
FROM customers.nation n;

-- q: scalar_correlated_in_having
-- expect: error does not support logical expression ScalarSubquery
SELECT o.o_custkey, count(*) AS n FROM sales.orders o
WHERE o.o_custkey < 100
GROUP BY o.o_custkey
HAVING count(*) > (SELECT count(*) / 1000 FROM sales.orders o2 WHERE o2.o_custkey < o.o_custkey);

-- q: scalar_subquery_empty_is_null
SELECT r_name, (SELECT n_name FROM customers.nation WHERE n_nationkey = 99) AS none FROM customers.region;

-- q: scalar_subquery_many_rows_uncorrelated
-- expect: error more than one row
SELECT r_name, (SELECT n_name FROM customers.nation) AS too_many FROM customers.region;

-- q: scalar_subquery_many_rows_correlated
-- expect: error must be aggregated
SELECT c.c_custkey, (SELECT o.o_orderkey FROM sales.orders o WHERE o.o_custkey = c.c_custkey) AS k
FROM customers.customer c WHERE c.c_custkey <= 5;

-- q: exists_correlated
SELECT count(*) AS n FROM customers.customer c
WHERE EXISTS (SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey AND o.o_totalprice > 300000);

-- q: exists_correlated_non_equi
SELECT count(*) AS n FROM customers.customer c
WHERE EXISTS (SELECT 1 FROM sales.orders o
              WHERE o.o_custkey = c.c_custkey AND o.o_totalprice > c.c_acctbal * 40);

-- q: not_exists_correlated_non_equi_only
SELECT n.n_nationkey FROM customers.nation n
WHERE NOT EXISTS (SELECT 1 FROM customers.nation n2 WHERE n2.n_nationkey > n.n_nationkey + 20);

-- q: exists_uncorrelated_true
SELECT count(*) AS n FROM customers.region WHERE EXISTS (SELECT 1 FROM customers.nation);

-- q: exists_uncorrelated_false
SELECT count(*) AS n FROM customers.region WHERE EXISTS (SELECT 1 FROM customers.nation WHERE n_nationkey < 0);

-- q: exists_or_condition
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_acctbal > 9000
   OR EXISTS (SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey AND o.o_orderpriority = '1-URGENT');

-- q: exists_in_select_list
-- expect: error does not support logical expression Exists
SELECT c.c_custkey,
       EXISTS (SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey) AS has_orders
FROM customers.customer c WHERE c.c_custkey <= 20;

-- q: in_subquery
SELECT count(*) AS n FROM sales.orders
WHERE o_custkey IN (SELECT c_custkey FROM customers.customer WHERE c_mktsegment = 'BUILDING');

-- q: in_subquery_correlated
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_nationkey IN (SELECT s.s_nationkey FROM supply.supplier s WHERE s.s_acctbal > c.c_acctbal);

-- q: not_in_subquery_no_nulls
SELECT count(*) AS n FROM customers.customer
WHERE c_custkey NOT IN (SELECT o_custkey FROM sales.orders);

-- q: not_in_subquery_with_null_is_empty
SELECT n_nationkey FROM customers.nation
WHERE n_nationkey NOT IN (SELECT CASE WHEN r_regionkey = 0 THEN NULL ELSE r_regionkey END FROM customers.region);

-- q: not_in_subquery_outer_null
SELECT k FROM (SELECT CASE WHEN n_nationkey < 3 THEN NULL ELSE n_nationkey END AS k FROM customers.nation) t
WHERE k NOT IN (SELECT r_regionkey FROM customers.region);

-- q: not_in_subquery_empty_keeps_nulls
SELECT k FROM (SELECT CASE WHEN n_nationkey < 3 THEN NULL ELSE n_nationkey END AS k FROM customers.nation) t
WHERE k NOT IN (SELECT r_regionkey FROM customers.region WHERE r_regionkey < 0);

-- q: in_subquery_in_select_with_nulls
-- expect: error does not support logical expression InSubquery
SELECT n_nationkey,
       n_nationkey IN (SELECT CASE WHEN r_regionkey = 0 THEN NULL ELSE r_regionkey END FROM customers.region) AS in_set
FROM customers.nation;

-- q: not_in_subquery_in_select_with_nulls
-- expect: error does not support logical expression InSubquery
SELECT n_nationkey,
       n_nationkey NOT IN (SELECT CASE WHEN r_regionkey = 0 THEN NULL ELSE r_regionkey END FROM customers.region) AS not_in_set
FROM customers.nation;

-- q: in_subquery_with_limit
SELECT c_custkey FROM customers.customer
WHERE c_custkey IN (SELECT o_custkey FROM sales.orders ORDER BY o_totalprice DESC, o_orderkey LIMIT 5);

-- q: any_equal_subquery
SELECT count(*) AS n FROM customers.nation
WHERE n_regionkey = ANY (SELECT r_regionkey FROM customers.region WHERE r_name LIKE 'A%');

-- q: any_greater_subquery
-- expect: refused ANY
SELECT count(*) AS n FROM customers.nation
WHERE n_nationkey > ANY (SELECT r_regionkey FROM customers.region);

-- q: all_greater_subquery
-- expect: refused ALL
SELECT count(*) AS n FROM customers.nation
WHERE n_nationkey > ALL (SELECT r_regionkey * 4 FROM customers.region);

-- q: any_less_subquery
-- expect: refused ANY
SELECT count(*) AS n FROM sales.orders
WHERE o_totalprice < ANY (SELECT c_acctbal * 10 FROM customers.customer WHERE c_custkey < 10);

-- q: all_not_equal_subquery
SELECT count(*) AS n FROM customers.nation
WHERE n_nationkey <> ALL (SELECT r_regionkey FROM customers.region);

-- q: some_equal_subquery
SELECT count(*) AS n FROM customers.nation
WHERE n_regionkey = SOME (SELECT r_regionkey FROM customers.region WHERE r_regionkey < 2);

-- q: all_greater_equal_empty_subquery
-- expect: refused ALL
SELECT count(*) AS n FROM customers.nation
WHERE n_nationkey >= ALL (SELECT r_regionkey FROM customers.region WHERE r_regionkey < 0);

-- q: any_correlated_subquery
-- expect: refused ANY
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_acctbal < ANY (SELECT o.o_totalprice / 100 FROM sales.orders o WHERE o.o_custkey = c.c_custkey);

-- q: any_equal_subquery_with_nulls_in_select
SELECT count(*) AS n FROM customers.nation
WHERE NOT (n_regionkey = ANY (SELECT CASE WHEN r_regionkey = 0 THEN NULL ELSE r_regionkey END FROM customers.region WHERE r_regionkey < 3));

-- q: all_not_equal_subquery_with_null_is_empty
SELECT count(*) AS n FROM customers.nation
WHERE n_nationkey <> ALL (SELECT CASE WHEN r_regionkey = 0 THEN NULL ELSE r_regionkey END FROM customers.region);

-- q: any_equal_correlated_subquery
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_nationkey = ANY (SELECT s.s_nationkey FROM supply.supplier s WHERE s.s_acctbal > c.c_acctbal);

-- q: max_rewrite_of_greater_all
SELECT count(*) AS n FROM customers.nation
WHERE n_nationkey > (SELECT max(r_regionkey * 4) FROM customers.region);

-- q: min_rewrite_of_greater_any
SELECT count(*) AS n FROM customers.nation
WHERE n_nationkey > (SELECT min(r_regionkey) FROM customers.region);

-- q: derived_table_aggregate
SELECT avg(n) AS avg_orders FROM (SELECT o_custkey, count(*) AS n FROM sales.orders GROUP BY o_custkey) t;

-- q: derived_table_window_filter
SELECT o_custkey, o_orderkey, o_totalprice FROM (
  SELECT o_custkey, o_orderkey, o_totalprice,
         row_number() OVER (PARTITION BY o_custkey ORDER BY o_totalprice DESC, o_orderkey) AS rn
  FROM sales.orders WHERE o_custkey < 30) t
WHERE rn = 1;

-- q: nested_correlation_two_levels
SELECT r.r_name FROM customers.region r
WHERE EXISTS (SELECT 1 FROM customers.nation n WHERE n.n_regionkey = r.r_regionkey
              AND EXISTS (SELECT 1 FROM supply.supplier s WHERE s.s_nationkey = n.n_nationkey AND s.s_acctbal > 9000));

-- q: correlated_to_outer_outer
-- expect: error No field named r.r_regionkey
SELECT r.r_name FROM customers.region r
WHERE EXISTS (SELECT 1 FROM customers.nation n
              WHERE n.n_regionkey = r.r_regionkey
                AND n.n_nationkey IN (SELECT s.s_nationkey FROM supply.supplier s WHERE s.s_suppkey < r.r_regionkey * 10));

-- q: subquery_in_case
-- expect: error does not support logical expression InSubquery
SELECT n_name, CASE WHEN n_nationkey IN (SELECT c_nationkey FROM customers.customer WHERE c_acctbal < -990)
                    THEN 'has deeply overdrawn' ELSE 'no' END AS flag
FROM customers.nation;

-- q: cte_used_twice
WITH spend AS (SELECT o_custkey, sum(o_totalprice) AS total FROM sales.orders GROUP BY o_custkey)
SELECT count(*) AS n FROM spend a JOIN spend b ON a.o_custkey = b.o_custkey + 1 AND a.total > b.total;

-- q: cte_column_aliases
WITH t(region, nations) AS (SELECT n_regionkey, count(*) FROM customers.nation GROUP BY n_regionkey)
SELECT region, nations FROM t;

-- q: cte_chain
WITH a AS (SELECT o_custkey, o_totalprice FROM sales.orders WHERE o_orderstatus = 'F'),
     b AS (SELECT o_custkey, max(o_totalprice) AS m FROM a GROUP BY o_custkey),
     c AS (SELECT count(*) AS n, sum(m) AS s FROM b)
SELECT n, s FROM c;

-- q: recursive_cte_numbers
WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10)
SELECT n FROM t;

-- q: recursive_cte_dates
WITH RECURSIVE d(day) AS (SELECT DATE '1995-01-01' UNION ALL SELECT CAST(day + INTERVAL '1' DAY AS DATE) FROM d WHERE day < DATE '1995-01-10')
SELECT d.day, count(o.o_orderkey) AS n FROM d LEFT JOIN sales.orders o ON o.o_orderdate = d.day GROUP BY d.day;

-- q: scalar_subquery_arithmetic
SELECT n_name, n_nationkey * 100.0 / (SELECT sum(n_nationkey) FROM customers.nation) AS share FROM customers.nation;

-- q: correlated_scalar_in_order_by
-- expect: error can only be used in Projection, Filter, Aggregate
-- ordered
SELECT r.r_name FROM customers.region r
ORDER BY (SELECT count(*) FROM customers.customer c JOIN customers.nation n ON c.c_nationkey = n.n_nationkey
          WHERE n.n_regionkey = r.r_regionkey) DESC, r.r_name;

-- q: not_exists_or_condition
SELECT count(*) AS n FROM customers.customer c
WHERE NOT EXISTS (SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey) OR c.c_acctbal < 0;

-- q: not_in_or_condition
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_custkey NOT IN (SELECT o_custkey FROM sales.orders) OR c.c_acctbal < 0;

-- q: in_and_not_in_combined
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_custkey IN (SELECT o_custkey FROM sales.orders WHERE o_orderstatus = 'P')
  AND c.c_custkey NOT IN (SELECT o_custkey FROM sales.orders WHERE o_orderpriority = '1-URGENT');

-- q: exists_over_aggregate_is_always_true
-- known-wrong: an aggregate without GROUP BY returns one row even on no input, so EXISTS is true for every customer (1500); the decorrelated semi join keeps only customers with orders (1000)
SELECT count(*) AS n FROM customers.customer c
WHERE EXISTS (SELECT max(o.o_totalprice) FROM sales.orders o WHERE o.o_custkey = c.c_custkey);

-- q: not_exists_over_count_is_always_false
-- known-wrong: NOT EXISTS over an aggregate without GROUP BY is false for every row (0); the decorrelated anti join returns the 500 customers without orders
SELECT count(*) AS n FROM customers.customer c
WHERE NOT EXISTS (SELECT count(*) FROM sales.orders o WHERE o.o_custkey = c.c_custkey);

-- q: scalar_correlated_coalesce_max
SELECT c.c_custkey, (SELECT coalesce(max(o.o_totalprice), 0) FROM sales.orders o WHERE o.o_custkey = c.c_custkey) AS m
FROM customers.customer c WHERE c.c_custkey <= 30;

-- q: scalar_correlated_sum_is_null
SELECT c.c_custkey, (SELECT sum(o.o_totalprice) IS NULL FROM sales.orders o WHERE o.o_custkey = c.c_custkey) AS none
FROM customers.customer c WHERE c.c_custkey <= 30;

-- q: scalar_correlated_case_over_count
SELECT c.c_custkey, (SELECT CASE WHEN count(*) = 0 THEN 'none' ELSE 'some' END FROM sales.orders o WHERE o.o_custkey = c.c_custkey) AS x
FROM customers.customer c WHERE c.c_custkey <= 30;

-- q: scalar_correlated_with_having
-- known-wrong: meshgate announces the pre-optimisation schema, where count(*) is NOT NULL; the decorrelated subquery yields NULL for customers with 15 orders or fewer and the stream fails with INTERNAL "cannot encode results" (server log: "Column 'many' is declared as non-nullable but contains null values")
SELECT c.c_custkey, (SELECT count(*) FROM sales.orders o WHERE o.o_custkey = c.c_custkey HAVING count(*) > 15) AS many
FROM customers.customer c WHERE c.c_custkey <= 30;

-- q: correlated_not_in_null_outer_empty_subquery
-- known-wrong: NULL NOT IN (empty set) is true; for the 15 customers with a NULL key whose correlated subquery is empty (c_custkey a multiple of 100) meshgate drops the row: 548 instead of 563
SELECT count(*) AS n
FROM (SELECT c_custkey, CASE WHEN c_custkey % 4 = 0 THEN NULL ELSE c_nationkey END AS k FROM customers.customer) c
WHERE c.k NOT IN (SELECT s.s_nationkey FROM supply.supplier s WHERE s.s_suppkey < c.c_custkey % 50);

-- q: correlated_not_in_no_nulls
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_nationkey NOT IN (SELECT s.s_nationkey + 1 FROM supply.supplier s WHERE s.s_nationkey = c.c_nationkey);

-- q: correlated_not_in_nulls_in_subquery
-- expect: error null_aware anti join only supports single column join key
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_nationkey NOT IN (SELECT CASE WHEN s.s_suppkey % 7 = 0 THEN NULL ELSE s.s_nationkey + 1 END
                            FROM supply.supplier s WHERE s.s_nationkey = c.c_nationkey);

-- q: exists_union_all_correlated
-- expect: error does not support logical expression Exists
SELECT count(*) AS n FROM customers.customer c
WHERE EXISTS (SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey
              UNION ALL SELECT 1 FROM supply.supplier s WHERE s.s_suppkey = c.c_custkey);

-- q: exists_correlated_with_limit
SELECT count(*) AS n FROM customers.customer c
WHERE EXISTS (SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey LIMIT 1);

-- q: aggregate_of_scalar_subquery
-- expect: error does not support logical expression ScalarSubquery
SELECT sum((SELECT count(*) FROM customers.nation n WHERE n.n_regionkey = r.r_regionkey)) AS s FROM customers.region r;

-- q: correlated_not_in_equality_null_outer
-- expect: error null_aware anti join only supports single column join key
SELECT count(*) AS n
FROM (SELECT c_custkey, CASE WHEN c_custkey % 4 = 0 THEN NULL ELSE c_nationkey END AS k FROM customers.customer) c
WHERE c.k NOT IN (SELECT s.s_nationkey FROM supply.supplier s WHERE s.s_suppkey = c.c_custkey);

-- q: correlated_in_null_outer_non_equi
SELECT count(*) AS n
FROM (SELECT c_custkey, CASE WHEN c_custkey % 4 = 0 THEN NULL ELSE c_nationkey END AS k FROM customers.customer) c
WHERE c.k IN (SELECT s.s_nationkey FROM supply.supplier s WHERE s.s_suppkey < c.c_custkey % 50);
