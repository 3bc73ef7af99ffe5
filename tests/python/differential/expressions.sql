-- Scalar expressions and casts: quantified comparisons with arrays, CASE and its
-- type, implicit coercions between strings, numbers and dates, boolean casts, NaN.

-- q: any_array_equal
SELECT count(*) AS n FROM customers.nation WHERE n_nationkey = ANY([1, 2, 3]);

-- q: any_array_greater
SELECT count(*) AS n FROM customers.nation WHERE n_nationkey > ANY([1, 2, 3]);

-- q: all_array_greater
SELECT count(*) AS n FROM customers.nation WHERE n_nationkey > ALL([1, 2, 3]);

-- q: all_array_not_equal
SELECT count(*) AS n FROM customers.nation WHERE n_nationkey <> ALL([1, 2, 3]);

-- q: in_list_mixed_literal_types
SELECT count(*) AS n FROM customers.nation WHERE n_nationkey IN ('1', 2);

-- q: compare_int_column_with_string_literal
SELECT n_name FROM customers.nation WHERE n_nationkey = '5';

-- q: case_mixed_result_types
-- dialect: CASE with an integer and a string branch is a string in meshgate (DataFusion coerces 1 to '1'); DuckDB and PostgreSQL fail to convert 'a' to an integer
SELECT n_nationkey, CASE WHEN n_nationkey > 5 THEN 1 ELSE 'a' END AS c FROM customers.nation;

-- q: case_numeric_branches_widen
SELECT n_nationkey, CASE WHEN n_nationkey > 5 THEN n_nationkey ELSE 0.5 END AS c FROM customers.nation;

-- q: case_searched_order_of_branches
SELECT n_nationkey, CASE WHEN n_nationkey > 20 THEN 'big' WHEN n_nationkey > 10 THEN 'mid' WHEN n_nationkey > 20 THEN 'never' ELSE 'small' END AS c
FROM customers.nation;

-- q: case_guards_division
SELECT n_nationkey, CASE WHEN n_regionkey = 0 THEN -1 ELSE n_nationkey / n_regionkey END AS q FROM customers.nation;
-- duckdb:
SELECT n_nationkey, CASE WHEN n_regionkey = 0 THEN -1 ELSE n_nationkey // n_regionkey END AS q FROM customers.nation;

-- q: string_concat_number
SELECT n_name || n_nationkey AS s FROM customers.nation;

-- q: cast_string_with_spaces_to_int
SELECT CAST(' 12 ' AS INT) AS i;

-- q: cast_scientific_string_to_int
-- expect: error Cannot cast string '1e3'
SELECT CAST('1e3' AS INT) AS i;

-- q: cast_string_to_boolean
SELECT CAST('yes' AS BOOLEAN) AS a, CAST('false' AS BOOLEAN) AS b, CAST('t' AS BOOLEAN) AS c, CAST(0 AS BOOLEAN) AS d;

-- q: cast_invalid_date
-- expect: error Cannot cast string '1995-02-30'
SELECT CAST('1995-02-30' AS DATE) AS d;

-- q: cast_float_to_string
SELECT CAST(12.5 AS VARCHAR) AS s, CAST(CAST(1 AS DOUBLE) / 3 AS VARCHAR) AS t;

-- q: date_minus_integer
SELECT DATE '1995-01-01' - 1 AS d, DATE '1995-03-01' - 1 AS e;

-- q: nan_semantics
SELECT CAST('NaN' AS DOUBLE) = CAST('NaN' AS DOUBLE) AS eq, CAST('NaN' AS DOUBLE) > 1 AS gt,
       CAST('Infinity' AS DOUBLE) > 1e308 AS inf;

-- q: float_equality_is_binary
SELECT CAST(0.1 AS DOUBLE) * 3 = CAST(0.3 AS DOUBLE) AS eq, abs(CAST(0.1 AS DOUBLE) * 3 - CAST(0.3 AS DOUBLE)) < 1e-12 AS close;

-- q: boolean_casts_and_arithmetic
SELECT CAST(true AS INT) AS i, CAST(2 AS BOOLEAN) AS b, sum(CASE WHEN n_regionkey = 1 THEN 1 ELSE 0 END) AS america
FROM customers.nation;

-- q: natural_join_without_common_columns
SELECT count(*) AS n FROM (SELECT n_nationkey FROM customers.nation) a NATURAL JOIN (SELECT r_regionkey FROM customers.region) b;
-- duckdb:
SELECT count(*) AS n FROM (SELECT n_nationkey FROM customers.nation) a CROSS JOIN (SELECT r_regionkey FROM customers.region) b;

-- q: exists_limit_zero
SELECT count(*) AS n FROM customers.region r
WHERE EXISTS (SELECT 1 FROM customers.nation n WHERE n.n_regionkey = r.r_regionkey LIMIT 0);

-- q: correlated_in_with_limit
-- expect: error does not support logical expression InSubquery
SELECT count(*) AS n FROM customers.region r
WHERE r.r_regionkey IN (SELECT n.n_regionkey FROM customers.nation n WHERE n.n_nationkey > r.r_regionkey * 5 ORDER BY n.n_nationkey LIMIT 1);

-- q: correlated_scalar_with_limit
-- expect: error does not support logical expression ScalarSubquery
SELECT count(*) AS n FROM customers.customer c
WHERE c.c_acctbal > (SELECT o.o_totalprice / 100 FROM sales.orders o WHERE o.o_custkey = c.c_custkey ORDER BY o.o_totalprice LIMIT 1);

-- q: correlated_count_is_null_never
SELECT count(*) AS n FROM customers.customer c WHERE (SELECT count(*) FROM sales.orders o WHERE o.o_custkey = c.c_custkey) IS NULL;

-- q: date_diff_function
SELECT date_diff('day', DATE '1995-01-01', DATE '1995-03-01') AS d;

-- q: between_symmetric
-- expect: error Expected: AND
SELECT count(*) AS n FROM customers.nation WHERE n_nationkey BETWEEN SYMMETRIC 10 AND 1;

-- q: limit_expression
SELECT n_nationkey FROM customers.nation ORDER BY n_nationkey LIMIT 2 + 3;

-- q: coalesce_types
SELECT n_nationkey, coalesce(CASE WHEN n_nationkey > 3 THEN c END, 0) AS v
FROM (SELECT n_nationkey, CAST(n_nationkey AS DECIMAL(10, 2)) / 4 AS c FROM customers.nation) t;

-- q: nested_case_and_coalesce
SELECT o_orderpriority,
       sum(CASE o_orderstatus WHEN 'F' THEN 1 WHEN 'O' THEN 0 ELSE NULL END) AS finished,
       count(coalesce(CASE WHEN o_totalprice > 300000 THEN o_orderkey END, NULL)) AS large
FROM sales.orders GROUP BY o_orderpriority;

-- q: values_table
SELECT x, y, x * 2 AS x2 FROM (VALUES (1, 'one'), (2, 'two'), (3, NULL)) AS t(x, y);

-- q: unnest_array_literal
SELECT unnest([3, 1, 2]) AS v;

-- q: array_functions
SELECT array_length([1, 2, 3]) AS l, array_has([1, 2, 3], 2) AS h, [1, 2, 3][2] AS second;
-- duckdb:
SELECT len([1, 2, 3]) AS l, list_contains([1, 2, 3], 2) AS h, [1, 2, 3][2] AS second;

-- q: struct_like_row_comparison
-- expect: error should only return one column
SELECT count(*) AS n FROM sales.lineitem WHERE (l_orderkey, l_linenumber) IN (SELECT o_orderkey, 1 FROM sales.orders WHERE o_orderkey < 100);

-- q: caret_is_power
-- expect: refused the ^ operator
SELECT 2 ^ 10 AS c, 2 ^ 3 AS d;

-- q: caret_on_column
-- expect: refused the ^ operator
SELECT p_partkey, p_size ^ 2 AS sq FROM supply.part WHERE p_partkey <= 20;

-- q: power_function
SELECT p_partkey, power(p_size, 2) AS sq, power(CAST(p_size AS DOUBLE), 0.5) AS root FROM supply.part WHERE p_partkey <= 20;

-- q: bitwise_operators
SELECT 2 | 1 AS o, 6 & 3 AS a, 1 << 4 AS s, 256 >> 2 AS r;

-- q: log_functions
SELECT log(100) AS a, log(2, 8) AS b, ln(1) AS c, log10(1000) AS d, exp(0) AS e;

-- q: math_functions
SELECT cbrt(CAST(27.0 AS DOUBLE)) AS c, degrees(pi()) AS d, gcd(12, 18) AS g, lcm(4, 6) AS l;

-- q: trunc_round_with_places
SELECT trunc(CAST(123.456 AS DOUBLE), 1) AS t, round(CAST(123.456 AS DOUBLE), -1) AS r;

-- q: mod_function
-- expect: error Invalid function 'mod'
SELECT mod(-7, 3) AS m;

-- q: extract_century
-- expect: error Date part 'CENTURY' not supported
SELECT extract(century FROM DATE '2000-06-01') AS c;

-- q: date_trunc_decade
-- expect: error Unsupported date_trunc granularity
SELECT date_trunc('decade', DATE '1995-06-01') AS d;

-- q: split_part_zero_index
-- expect: error field position must not be zero
SELECT split_part('a,b,c', ',', 0) AS z;

-- q: uppercase_identifiers_fold
SELECT N_NAME FROM CUSTOMERS.NATION WHERE N_NATIONKEY = 1;

-- q: quoted_identifiers
SELECT "n_name" FROM "customers"."nation" WHERE "n_nationkey" = 1;

-- q: cte_named_like_a_product
WITH orders AS (SELECT 1 AS x) SELECT * FROM orders;

-- q: cte_shadows_bare_name_only
WITH nation AS (SELECT 1 AS x) SELECT count(*) AS n FROM nation, customers.nation;

-- q: order_by_alias_shadowing_column
-- ordered
SELECT n_name AS n_regionkey FROM customers.nation ORDER BY n_regionkey LIMIT 5;

-- q: order_by_alias_of_negated_column
-- ordered
SELECT -n_nationkey AS n_nationkey FROM customers.nation WHERE n_nationkey > 20 ORDER BY n_nationkey;

-- q: group_by_alias_having_alias
SELECT n_regionkey AS k, count(*) AS c FROM customers.nation GROUP BY k HAVING k > 2;

-- q: parenthesised_union_branches_with_limits
(SELECT n_nationkey FROM customers.nation ORDER BY n_nationkey LIMIT 2)
UNION ALL (SELECT n_nationkey FROM customers.nation ORDER BY n_nationkey DESC LIMIT 2);

-- q: postgres_style_casts
SELECT '5'::int + 1 AS a, o_orderdate::varchar AS b, CAST(o_orderkey AS TEXT) AS c, 10::double / 4 AS d, '1995-01-01'::date + 1 AS e
FROM sales.orders WHERE o_orderkey <= 3;

-- q: count_null_and_constants
SELECT count(NULL) AS a, count(1) AS b, sum(1) AS c FROM customers.nation;

-- q: like_null_pattern
SELECT count(*) AS n FROM customers.nation WHERE n_name LIKE NULL;

-- q: limit_all
SELECT n_nationkey FROM customers.nation ORDER BY n_nationkey LIMIT ALL;
