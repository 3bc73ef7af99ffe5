-- Set operations: UNION / INTERSECT / EXCEPT with and without ALL (multiset
-- semantics), precedence, type coercion, ORDER BY / LIMIT on the whole result.

-- q: union_distinct
SELECT n_regionkey AS k FROM customers.nation UNION SELECT r_regionkey FROM customers.region;

-- q: union_all_keeps_duplicates
SELECT n_regionkey AS k FROM customers.nation UNION ALL SELECT r_regionkey FROM customers.region;

-- q: intersect_distinct
SELECT c_nationkey AS k FROM customers.customer WHERE c_acctbal > 9900
INTERSECT SELECT s_nationkey FROM supply.supplier;

-- q: intersect_all_multiplicities
-- expect: refused INTERSECT ALL / EXCEPT ALL
SELECT n_regionkey AS k FROM customers.nation WHERE n_nationkey < 15
INTERSECT ALL SELECT n_regionkey FROM customers.nation WHERE n_nationkey >= 5;

-- q: except_distinct
SELECT n_nationkey AS k FROM customers.nation EXCEPT SELECT c_nationkey FROM customers.customer WHERE c_acctbal > 9950;

-- q: except_all_multiplicities
-- expect: refused INTERSECT ALL / EXCEPT ALL
SELECT n_regionkey AS k FROM customers.nation
EXCEPT ALL SELECT r_regionkey FROM customers.region;

-- q: except_all_more_on_right
-- expect: refused INTERSECT ALL / EXCEPT ALL
SELECT r_regionkey AS k FROM customers.region
EXCEPT ALL SELECT n_regionkey FROM customers.nation WHERE n_nationkey < 12;

-- q: except_all_of_union_all
-- expect: refused INTERSECT ALL / EXCEPT ALL
(SELECT r_regionkey AS k FROM customers.region UNION ALL SELECT r_regionkey FROM customers.region UNION ALL SELECT 1)
EXCEPT ALL SELECT r_regionkey FROM customers.region WHERE r_regionkey < 3;

-- q: intersect_binds_tighter_than_union
SELECT r_regionkey AS k FROM customers.region WHERE r_regionkey = 0
UNION SELECT n_nationkey FROM customers.nation WHERE n_nationkey < 10
INTERSECT SELECT n_nationkey FROM customers.nation WHERE n_nationkey > 5;

-- q: parenthesised_set_ops
(SELECT r_regionkey AS k FROM customers.region WHERE r_regionkey = 0
 UNION SELECT n_nationkey FROM customers.nation WHERE n_nationkey < 10)
INTERSECT SELECT n_nationkey FROM customers.nation WHERE n_nationkey > 5;

-- q: except_then_union_left_to_right
SELECT n_nationkey AS k FROM customers.nation WHERE n_nationkey < 10
EXCEPT SELECT r_regionkey FROM customers.region
UNION SELECT 3;

-- q: union_two_columns_dedup
SELECT o_orderstatus, o_orderpriority FROM sales.orders WHERE o_custkey < 100
UNION SELECT o_orderstatus, o_orderpriority FROM sales.orders WHERE o_custkey > 1400;

-- q: union_int_and_decimal_coercion
SELECT n_nationkey AS v FROM customers.nation WHERE n_nationkey < 3
UNION ALL SELECT c_acctbal FROM customers.customer WHERE c_custkey < 3;

-- q: union_int32_and_int64
SELECT p_size AS v FROM supply.part WHERE p_partkey < 4 UNION ALL SELECT p_partkey FROM supply.part WHERE p_partkey < 4;

-- q: union_strings_and_literals
SELECT r_name AS name FROM customers.region UNION ALL SELECT 'ATLANTIS' UNION ALL SELECT n_name FROM customers.nation WHERE n_nationkey = 0;

-- q: union_order_by_limit
-- ordered
SELECT n_name AS name FROM customers.nation UNION SELECT r_name FROM customers.region ORDER BY name DESC LIMIT 7;

-- q: union_all_aggregated
SELECT src, count(*) AS n FROM (
  SELECT 'customer' AS src, c_nationkey AS k FROM customers.customer
  UNION ALL SELECT 'supplier', s_nationkey FROM supply.supplier) t GROUP BY src;

-- q: union_all_count_star
SELECT count(*) AS n FROM (SELECT o_orderkey FROM sales.orders UNION ALL SELECT l_orderkey FROM sales.lineitem) t;

-- q: union_distinct_count
SELECT count(*) AS n FROM (SELECT o_orderkey FROM sales.orders UNION SELECT l_orderkey FROM sales.lineitem) t;

-- q: set_op_with_cte
WITH eu AS (SELECT n_nationkey FROM customers.nation WHERE n_regionkey = 3)
SELECT c_custkey FROM customers.customer WHERE c_custkey < 200 AND c_nationkey IN (SELECT n_nationkey FROM eu)
EXCEPT SELECT o_custkey FROM sales.orders;

-- q: values_union
SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (2, 'b')) AS t(x, y)
UNION SELECT * FROM (VALUES (2, 'b'), (3, 'c')) AS u(x, y);

-- q: values_intersect_all
-- expect: refused INTERSECT ALL / EXCEPT ALL
SELECT * FROM (VALUES (1), (1), (1), (2), (3)) AS t(x)
INTERSECT ALL SELECT * FROM (VALUES (1), (1), (3), (3)) AS u(x);

-- q: values_except_all
-- expect: refused INTERSECT ALL / EXCEPT ALL
SELECT * FROM (VALUES (1), (1), (1), (2), (3)) AS t(x)
EXCEPT ALL SELECT * FROM (VALUES (1), (3), (3)) AS u(x);

-- q: union_with_different_column_names
SELECT n_name AS a, n_nationkey AS b FROM customers.nation WHERE n_nationkey < 2
UNION ALL SELECT r_name AS c, r_regionkey AS d FROM customers.region WHERE r_regionkey < 2;

-- q: except_on_date_sets
SELECT DISTINCT o_orderdate FROM sales.orders WHERE o_orderdate < DATE '1992-03-01'
EXCEPT SELECT l_shipdate FROM sales.lineitem;

-- q: intersect_on_strings
SELECT DISTINCT l_shipmode FROM sales.lineitem INTERSECT SELECT 'AIR' UNION SELECT 'SEA';

-- q: union_all_with_nulls_and_types
SELECT CAST(NULL AS INT) AS v UNION ALL SELECT 1 UNION ALL SELECT NULL;

-- q: union_int32_first_then_big_literal
SELECT p_size AS v FROM supply.part WHERE p_partkey < 3 UNION ALL SELECT 3000000000;

-- q: union_bigint_first_then_double
SELECT n_nationkey AS v FROM customers.nation WHERE n_nationkey < 2 UNION ALL SELECT s_acctbal FROM supply.supplier WHERE s_suppkey < 3;

-- q: union_date_first_then_timestamp
SELECT DATE '1995-01-01' AS v UNION ALL SELECT TIMESTAMP '1995-01-01 12:30:00';

-- q: union_int_literal_then_decimal_literal
SELECT 1 AS v UNION ALL SELECT 2.5;

-- q: union_decimals_of_different_scale
SELECT CAST(1.5 AS DECIMAL(3, 1)) AS v UNION ALL SELECT CAST(123.45 AS DECIMAL(5, 2));

-- q: union_null_first
SELECT NULL AS v UNION ALL SELECT 1;

-- q: union_string_first_then_int
SELECT r_name AS v FROM customers.region UNION ALL SELECT CAST(n_nationkey AS VARCHAR) FROM customers.nation WHERE n_nationkey < 2;

-- q: intersect_all_rewritten_with_row_numbers
SELECT x FROM (
  SELECT x, row_number() OVER (PARTITION BY x) AS n FROM (VALUES (1), (1), (1), (2), (3)) AS t(x)
  INTERSECT
  SELECT x, row_number() OVER (PARTITION BY x) AS n FROM (VALUES (1), (1), (3), (3)) AS u(x)) w;

-- q: except_all_rewritten_with_row_numbers
SELECT x FROM (
  SELECT x, row_number() OVER (PARTITION BY x) AS n FROM (VALUES (1), (1), (1), (2), (3)) AS t(x)
  EXCEPT
  SELECT x, row_number() OVER (PARTITION BY x) AS n FROM (VALUES (1), (3), (3)) AS u(x)) w;
