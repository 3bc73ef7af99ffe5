-- Joins of every kind on the demo mesh: inner, outer, semi/anti, USING/NATURAL,
-- non-equi and band conditions, NULL keys, lateral.

-- q: inner_orders_per_segment
SELECT c.c_mktsegment, count(*) AS orders, sum(o.o_totalprice) AS total
FROM customers.customer c JOIN sales.orders o ON o.o_custkey = c.c_custkey
GROUP BY c.c_mktsegment;

-- q: three_way_region_revenue
SELECT r.r_name, sum(l.l_extendedprice * (1 - l.l_discount)) AS revenue
FROM sales.lineitem l
JOIN sales.orders o ON l.l_orderkey = o.o_orderkey
JOIN customers.customer c ON o.o_custkey = c.c_custkey
JOIN customers.nation n ON c.c_nationkey = n.n_nationkey
JOIN customers.region r ON n.n_regionkey = r.r_regionkey
GROUP BY r.r_name;

-- q: left_join_customers_without_orders
SELECT count(*) AS customers_without_orders
FROM customers.customer c LEFT JOIN sales.orders o ON o.o_custkey = c.c_custkey
WHERE o.o_orderkey IS NULL;

-- q: left_join_count_star_vs_count_col
SELECT c.c_custkey, count(*) AS n_rows, count(o.o_orderkey) AS n_orders
FROM customers.customer c LEFT JOIN sales.orders o ON o.o_custkey = c.c_custkey
WHERE c.c_custkey <= 40
GROUP BY c.c_custkey;

-- q: left_join_condition_in_on
SELECT c.c_custkey, count(o.o_orderkey) AS urgent_orders
FROM customers.customer c
LEFT JOIN sales.orders o ON o.o_custkey = c.c_custkey AND o.o_orderpriority = '1-URGENT'
WHERE c.c_custkey <= 60
GROUP BY c.c_custkey;

-- q: left_join_condition_in_where
SELECT c.c_custkey, count(o.o_orderkey) AS urgent_orders
FROM customers.customer c
LEFT JOIN sales.orders o ON o.o_custkey = c.c_custkey
WHERE c.c_custkey <= 60 AND o.o_orderpriority = '1-URGENT'
GROUP BY c.c_custkey;

-- q: left_join_on_left_only_condition
SELECT n.n_nationkey, r.r_name
FROM customers.nation n
LEFT JOIN customers.region r ON n.n_regionkey = r.r_regionkey AND n.n_nationkey < 8;

-- q: right_join_nations_regions
SELECT r.r_name, n.n_name
FROM customers.nation n
RIGHT JOIN customers.region r ON n.n_regionkey = r.r_regionkey AND n.n_name LIKE 'A%';

-- q: full_join_equi_partial_overlap
SELECT a.k AS a_k, b.k AS b_k
FROM (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey < 15) a
FULL JOIN (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey >= 10) b ON a.k = b.k;

-- q: full_join_equi_plus_non_equi
SELECT n.n_nationkey, r.r_regionkey
FROM customers.nation n
FULL JOIN customers.region r ON n.n_regionkey = r.r_regionkey AND n.n_nationkey < 10;

-- q: full_join_pure_non_equi
SELECT a.n_nationkey AS a_key, b.n_nationkey AS b_key
FROM customers.nation a
FULL JOIN customers.nation b ON a.n_nationkey > b.n_nationkey + 20;

-- q: full_join_aggregated_counts
SELECT count(*) AS all_rows, count(c.c_custkey) AS with_customer, count(s.s_suppkey) AS with_supplier
FROM (SELECT c_custkey, c_nationkey FROM customers.customer WHERE c_custkey <= 200) c
FULL JOIN supply.supplier s ON c.c_custkey = s.s_suppkey AND c.c_nationkey = s.s_nationkey;

-- q: full_join_or_condition
SELECT a.r_regionkey AS a_key, b.r_regionkey AS b_key
FROM customers.region a
FULL JOIN customers.region b ON a.r_regionkey = b.r_regionkey + 1 OR a.r_regionkey = b.r_regionkey + 3;

-- q: cross_join_count
SELECT count(*) AS n FROM customers.nation CROSS JOIN customers.region;

-- q: cross_join_filtered
SELECT r.r_name, n.n_name FROM customers.region r, customers.nation n
WHERE n.n_regionkey = r.r_regionkey AND r.r_name = 'EUROPE';

-- q: self_join_same_region_pairs
SELECT a.n_name AS a_name, b.n_name AS b_name
FROM customers.nation a JOIN customers.nation b
  ON a.n_regionkey = b.n_regionkey AND a.n_nationkey < b.n_nationkey;

-- q: multi_key_join_lineitem_partsupp
SELECT count(*) AS n, sum(ps.ps_supplycost * l.l_quantity) AS cost
FROM sales.lineitem l
JOIN supply.partsupp ps ON l.l_partkey = ps.ps_partkey AND l.l_suppkey = ps.ps_suppkey;

-- q: band_join_cost_vs_price
SELECT count(*) AS n
FROM supply.partsupp ps JOIN supply.part p
  ON ps.ps_partkey = p.p_partkey AND ps.ps_supplycost < p.p_retailprice / 4;

-- q: inequality_only_join
SELECT count(*) AS n
FROM customers.region r JOIN customers.nation n ON n.n_nationkey BETWEEN r.r_regionkey * 5 AND r.r_regionkey * 5 + 2;

-- q: join_on_expression
SELECT count(*) AS n
FROM sales.orders o JOIN sales.lineitem l
  ON l.l_orderkey = o.o_orderkey AND l.l_shipdate = o.o_orderdate + INTERVAL '30' DAY;

-- q: join_on_true
SELECT count(*) AS n FROM customers.region JOIN customers.region r2 ON true;

-- q: using_select_star
SELECT *
FROM (SELECT n_regionkey AS k, n_name FROM customers.nation) a
JOIN (SELECT r_regionkey AS k, r_name FROM customers.region) b USING (k);

-- q: using_left_join
SELECT k, n_name, r_name
FROM (SELECT n_regionkey AS k, n_name FROM customers.nation) a
LEFT JOIN (SELECT r_regionkey AS k, r_name FROM customers.region WHERE r_regionkey < 3) b USING (k);

-- q: using_full_join_key_coalesced
-- expect: refused FULL or RIGHT JOIN with USING or NATURAL
SELECT k
FROM (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey < 15) a
FULL JOIN (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey >= 10) b USING (k);

-- q: using_full_join_qualified_sides
-- expect: refused FULL or RIGHT JOIN with USING or NATURAL
SELECT a.k AS a_k, b.k AS b_k
FROM (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey < 15) a
FULL JOIN (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey >= 10) b USING (k);

-- q: using_two_columns
SELECT count(*) AS n
FROM (SELECT l_partkey AS pk, l_suppkey AS sk FROM sales.lineitem) l
JOIN (SELECT ps_partkey AS pk, ps_suppkey AS sk FROM supply.partsupp) p USING (pk, sk);

-- q: natural_join
SELECT *
FROM (SELECT n_regionkey AS rk, n_name FROM customers.nation) a
NATURAL JOIN (SELECT r_regionkey AS rk, r_name FROM customers.region) b;

-- q: natural_full_join
-- expect: refused FULL or RIGHT JOIN with USING or NATURAL
SELECT *
FROM (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey < 15) a
NATURAL FULL JOIN (SELECT n_nationkey AS k, n_name FROM customers.nation WHERE n_nationkey >= 10) b;

-- q: null_keys_never_match_inner
SELECT count(*) AS n
FROM (SELECT CASE WHEN n_nationkey % 5 = 0 THEN NULL ELSE n_nationkey END AS k FROM customers.nation) a
JOIN (SELECT CASE WHEN n_nationkey % 3 = 0 THEN NULL ELSE n_nationkey END AS k FROM customers.nation) b
  ON a.k = b.k;

-- q: null_keys_full_join
SELECT a.k AS a_k, b.k AS b_k
FROM (SELECT CASE WHEN n_nationkey % 5 = 0 THEN NULL ELSE n_nationkey END AS k FROM customers.nation) a
FULL JOIN (SELECT CASE WHEN n_nationkey % 3 = 0 THEN NULL ELSE n_nationkey END AS k FROM customers.nation) b
  ON a.k = b.k;

-- q: null_safe_join_is_not_distinct_from
SELECT count(*) AS n
FROM (SELECT CASE WHEN n_nationkey % 5 = 0 THEN NULL ELSE n_nationkey END AS k FROM customers.nation) a
JOIN (SELECT CASE WHEN n_nationkey % 3 = 0 THEN NULL ELSE n_nationkey END AS k FROM customers.nation) b
  ON a.k IS NOT DISTINCT FROM b.k;

-- q: semi_join_exists
SELECT c.c_mktsegment, count(*) AS n
FROM customers.customer c
WHERE EXISTS (SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey AND o.o_orderstatus = 'P')
GROUP BY c.c_mktsegment;

-- q: anti_join_not_exists
SELECT count(*) AS n
FROM customers.customer c
WHERE NOT EXISTS (SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey);

-- q: anti_join_left_is_null_on_partsupp
SELECT count(*) AS n
FROM supply.part p LEFT JOIN sales.lineitem l ON l.l_partkey = p.p_partkey
WHERE l.l_orderkey IS NULL;

-- q: join_duplicate_keys_multiply
SELECT count(*) AS n
FROM (SELECT n_regionkey AS k FROM customers.nation) a
JOIN (SELECT n_regionkey AS k FROM customers.nation) b ON a.k = b.k;

-- q: join_derived_aggregates
SELECT c.c_nationkey, sum(t.spent) AS spent, count(*) AS customers
FROM customers.customer c
JOIN (SELECT o_custkey, sum(o_totalprice) AS spent FROM sales.orders GROUP BY o_custkey) t
  ON t.o_custkey = c.c_custkey
GROUP BY c.c_nationkey;

-- q: join_string_keys_upper
SELECT count(*) AS n
FROM customers.nation n JOIN customers.region r ON upper(substr(n.n_name, 1, 1)) = substr(r.r_name, 1, 1);

-- q: top_customers_by_revenue
-- ordered
SELECT c.c_custkey, c.c_name, sum(o.o_totalprice) AS total
FROM customers.customer c JOIN sales.orders o ON o.o_custkey = c.c_custkey
GROUP BY c.c_custkey, c.c_name
ORDER BY total DESC, c.c_custkey
LIMIT 10;

-- q: supplier_csv_join_nation
SELECT n.n_name, count(*) AS suppliers, sum(s.s_acctbal) AS balance
FROM supply.supplier s JOIN customers.nation n ON s.s_nationkey = n.n_nationkey
GROUP BY n.n_name;

-- q: same_nation_customer_supplier
SELECT count(*) AS n
FROM customers.customer c JOIN supply.supplier s ON c.c_nationkey = s.s_nationkey
WHERE c.c_acctbal > 9000;

-- q: lateral_count_per_region
SELECT r.r_name, t.n
FROM customers.region r,
     LATERAL (SELECT count(*) AS n FROM customers.nation n WHERE n.n_regionkey = r.r_regionkey) t;

-- q: lateral_top_n_per_group
-- expect: error OuterReferenceColumn
SELECT r.r_name, t.n_name
FROM customers.region r
CROSS JOIN LATERAL (SELECT n.n_name FROM customers.nation n WHERE n.n_regionkey = r.r_regionkey
                    ORDER BY n.n_name LIMIT 2) t;

-- q: join_with_in_list_and_or
SELECT o.o_orderpriority, count(*) AS n
FROM sales.orders o JOIN customers.customer c ON o.o_custkey = c.c_custkey
WHERE c.c_mktsegment IN ('BUILDING', 'MACHINERY') OR o.o_totalprice > 380000
GROUP BY o.o_orderpriority;

-- q: using_right_join_key
-- expect: refused FULL or RIGHT JOIN with USING or NATURAL
SELECT k, n_name
FROM (SELECT n_nationkey AS k, n_name FROM customers.nation WHERE n_nationkey < 5) a
RIGHT JOIN (SELECT r_regionkey * 2 AS k FROM customers.region) b USING (k);

-- q: natural_left_join
SELECT *
FROM (SELECT n_nationkey AS k, n_name FROM customers.nation WHERE n_nationkey < 6) a
NATURAL LEFT JOIN (SELECT r_regionkey * 2 AS k, r_name FROM customers.region) b;

-- q: left_join_lateral_count_zero
SELECT r.r_name, t.n
FROM customers.region r
LEFT JOIN LATERAL (SELECT count(*) AS n FROM customers.nation n WHERE n.n_regionkey = r.r_regionkey AND n.n_nationkey > 20) t ON true;

-- q: lateral_aggregate_comma
SELECT r.r_name, t.m FROM customers.region r,
       LATERAL (SELECT max(n.n_name) AS m FROM customers.nation n WHERE n.n_regionkey = r.r_regionkey) t;

-- q: join_lateral_rows
SELECT r.r_name, t.n_name FROM customers.region r
JOIN LATERAL (SELECT n.n_name FROM customers.nation n WHERE n.n_regionkey = r.r_regionkey) t ON true;

-- q: left_join_or_condition
SELECT count(*) AS n FROM customers.customer c LEFT JOIN sales.orders o ON o.o_custkey = c.c_custkey OR o.o_orderkey = c.c_custkey;

-- q: left_join_null_safe_or_condition
SELECT a.k AS a_k, b.k AS b_k
FROM (SELECT NULLIF(r_regionkey, 1) AS k FROM customers.region) a
LEFT JOIN (SELECT NULLIF(r_regionkey, 2) AS k FROM customers.region) b ON a.k = b.k OR (a.k IS NULL AND b.k IS NULL);

-- q: full_join_on_with_coalesced_key
SELECT COALESCE(a.k, b.k) AS k
FROM (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey < 15) a
FULL JOIN (SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey >= 10) b ON a.k = b.k;

-- q: right_join_on_with_right_key
SELECT b.k, a.n_name
FROM (SELECT n_nationkey AS k, n_name FROM customers.nation WHERE n_nationkey < 5) a
RIGHT JOIN (SELECT r_regionkey * 2 AS k FROM customers.region) b ON a.k = b.k;

-- q: natural_right_join
-- expect: refused FULL or RIGHT JOIN with USING or NATURAL
SELECT *
FROM (SELECT n_nationkey AS k, n_name FROM customers.nation WHERE n_nationkey < 6) a
NATURAL RIGHT JOIN (SELECT r_regionkey * 2 AS k, r_name FROM customers.region) b;
