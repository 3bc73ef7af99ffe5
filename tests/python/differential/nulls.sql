-- NULL semantics: three-valued logic, aggregates over NULLs, NULL keys in grouping
-- and set operations, NULL-safe comparison, NULL ordering. The demo data has no
-- NULLs, so the queries make them (NULLIF, CASE, outer joins).

-- q: count_star_vs_count_col
SELECT count(*) AS all_rows, count(k) AS non_null, count(DISTINCT k) AS distinct_non_null
FROM (SELECT NULLIF(n_regionkey, 2) AS k FROM customers.nation) t;

-- q: aggregates_skip_nulls
SELECT sum(k) AS s, avg(k) AS a, min(k) AS lo, max(k) AS hi
FROM (SELECT NULLIF(n_nationkey % 4, 0) AS k FROM customers.nation) t;

-- q: sum_of_all_nulls_is_null
SELECT sum(k) AS s, max(k) AS m, count(k) AS c
FROM (SELECT CAST(NULL AS BIGINT) AS k FROM customers.region) t;

-- q: aggregates_of_empty_input
SELECT count(*) AS c, sum(n_nationkey) AS s, avg(n_nationkey) AS a, min(n_name) AS m
FROM customers.nation WHERE n_nationkey < 0;

-- q: equals_null_matches_nothing
SELECT count(*) AS n FROM customers.nation WHERE n_regionkey = NULL;

-- q: not_equals_null_matches_nothing
SELECT count(*) AS n FROM customers.nation WHERE n_regionkey <> NULL;

-- q: is_null_and_is_not_null
SELECT count(*) FILTER (WHERE k IS NULL) AS nulls, count(*) FILTER (WHERE k IS NOT NULL) AS not_nulls
FROM (SELECT NULLIF(n_regionkey, 1) AS k FROM customers.nation) t;

-- q: is_distinct_from
SELECT a, b, a IS DISTINCT FROM b AS d, a IS NOT DISTINCT FROM b AS nd, a = b AS eq
FROM (SELECT NULLIF(n_nationkey % 3, 0) AS a, NULLIF(n_nationkey % 2, 0) AS b FROM customers.nation) t;

-- q: three_valued_and_or
SELECT x, y, x AND y AS x_and_y, x OR y AS x_or_y, NOT x AS not_x
FROM (SELECT CASE WHEN n_nationkey % 3 = 0 THEN NULL ELSE n_nationkey % 3 = 1 END AS x,
             CASE WHEN n_nationkey % 5 = 0 THEN NULL ELSE n_nationkey % 5 < 3 END AS y
      FROM customers.nation) t;

-- q: where_not_on_null
SELECT count(*) AS n FROM (SELECT NULLIF(n_regionkey, 0) AS k FROM customers.nation) t WHERE NOT (k > 2);

-- q: is_true_is_unknown
SELECT count(*) FILTER (WHERE (k > 2) IS TRUE) AS t, count(*) FILTER (WHERE (k > 2) IS NOT FALSE) AS not_f,
       count(*) FILTER (WHERE (k > 2) IS UNKNOWN) AS u, count(*) FILTER (WHERE (k > 2) IS FALSE) AS f
FROM (SELECT NULLIF(n_regionkey, 0) AS k FROM customers.nation) t;

-- q: coalesce_nullif
SELECT n_nationkey, coalesce(NULLIF(n_regionkey, 0), NULLIF(n_nationkey, 0), -1) AS c
FROM customers.nation;

-- q: case_when_null_condition
SELECT n_nationkey, CASE WHEN NULLIF(n_regionkey, 1) > 1 THEN 'big' WHEN NULLIF(n_regionkey, 1) <= 1 THEN 'small' ELSE 'unknown' END AS c
FROM customers.nation;

-- q: simple_case_null_never_matches
SELECT n_nationkey, CASE NULLIF(n_regionkey, 1) WHEN NULL THEN 'null' WHEN 0 THEN 'zero' ELSE 'other' END AS c
FROM customers.nation;

-- q: in_list_with_null
SELECT n_nationkey, n_nationkey IN (1, 2, NULL) AS in_list, n_nationkey NOT IN (1, 2, NULL) AS not_in_list
FROM customers.nation;

-- q: not_in_list_with_null_filters_all
SELECT count(*) AS n FROM customers.nation WHERE n_nationkey NOT IN (1, 2, NULL);

-- q: between_with_null_bound
SELECT n_nationkey, n_nationkey BETWEEN NULLIF(n_regionkey, 0) AND 10 AS b FROM customers.nation;

-- q: group_by_null_key
SELECT k, count(*) AS n FROM (SELECT NULLIF(n_regionkey, 3) AS k FROM customers.nation) t GROUP BY k;

-- q: distinct_with_nulls
SELECT DISTINCT NULLIF(n_regionkey, 3) AS k FROM customers.nation;

-- q: count_distinct_pairs_with_null
SELECT count(DISTINCT (a, b)) AS pairs FROM
  (SELECT NULLIF(n_regionkey, 0) AS a, NULLIF(n_nationkey % 2, 0) AS b FROM customers.nation) t;
-- duckdb:
SELECT count(DISTINCT row(a, b)) AS pairs FROM
  (SELECT NULLIF(n_regionkey, 0) AS a, NULLIF(n_nationkey % 2, 0) AS b FROM customers.nation) t;

-- q: order_by_nulls_first_last_asc
-- ordered
SELECT n_nationkey, NULLIF(n_regionkey, 2) AS k FROM customers.nation ORDER BY k ASC NULLS FIRST, n_nationkey;

-- q: order_by_nulls_last_desc
-- ordered
SELECT n_nationkey, NULLIF(n_regionkey, 2) AS k FROM customers.nation ORDER BY k DESC NULLS LAST, n_nationkey;

-- q: order_by_default_asc_nulls_last
-- ordered
SELECT n_nationkey, NULLIF(n_regionkey, 2) AS k FROM customers.nation ORDER BY k, n_nationkey;

-- q: order_by_default_desc_nulls
-- ordered
-- dialect: with DESC and no NULLS clause, meshgate (DataFusion, like PostgreSQL) puts NULLs first; DuckDB puts them last. Write NULLS FIRST/LAST when it matters
SELECT n_nationkey, NULLIF(n_regionkey, 2) AS k FROM customers.nation ORDER BY k DESC, n_nationkey;

-- q: concat_operator_null_vs_concat_function
SELECT n_nationkey, n_name || CAST(NULLIF(n_regionkey, 0) AS VARCHAR) AS op,
       concat(n_name, CAST(NULLIF(n_regionkey, 0) AS VARCHAR)) AS fn,
       concat_ws('-', n_name, CAST(NULLIF(n_regionkey, 0) AS VARCHAR), 'x') AS ws
FROM customers.nation;

-- q: greatest_least_with_null
SELECT n_nationkey, greatest(NULLIF(n_regionkey, 0), 2) AS g, least(NULLIF(n_regionkey, 0), 2) AS l
FROM customers.nation;

-- q: arithmetic_with_null
SELECT n_nationkey, NULLIF(n_regionkey, 0) + 1 AS plus, NULLIF(n_regionkey, 0) * n_nationkey AS times
FROM customers.nation;

-- q: union_dedups_nulls
SELECT NULLIF(n_regionkey, 0) AS k FROM customers.nation
UNION SELECT NULLIF(r_regionkey, 4) FROM customers.region;

-- q: intersect_matches_nulls
SELECT NULLIF(n_regionkey, 0) AS k FROM customers.nation
INTERSECT SELECT NULLIF(r_regionkey, 4) * 0 + NULLIF(r_regionkey, 4) FROM customers.region;

-- q: except_removes_nulls
SELECT NULLIF(n_regionkey, 0) AS k FROM customers.nation
EXCEPT SELECT CAST(NULL AS BIGINT) FROM customers.region;

-- q: string_agg_skips_nulls
SELECT n_regionkey, string_agg(CASE WHEN n_nationkey % 2 = 0 THEN n_name END, ',' ORDER BY n_name) AS names
FROM customers.nation GROUP BY n_regionkey;

-- q: bool_and_or_with_nulls
SELECT n_regionkey, bool_and(CASE WHEN n_nationkey % 4 = 0 THEN NULL ELSE n_nationkey > 2 END) AS all_big,
       bool_or(CASE WHEN n_nationkey % 4 = 0 THEN NULL ELSE n_nationkey > 20 END) AS any_huge
FROM customers.nation GROUP BY n_regionkey;

-- q: outer_join_nulls_aggregated
SELECT c.c_nationkey, count(o.o_orderkey) AS n, sum(o.o_totalprice) AS s, avg(o.o_totalprice) AS a
FROM customers.customer c LEFT JOIN sales.orders o ON o.o_custkey = c.c_custkey AND o.o_totalprice > 350000
GROUP BY c.c_nationkey;

-- q: min_max_strings_with_nulls
SELECT n_regionkey, min(NULLIF(n_name, 'ALGERIA')) AS lo, max(CASE WHEN n_nationkey > 20 THEN NULL ELSE n_name END) AS hi
FROM customers.nation GROUP BY n_regionkey;

-- q: nullif_same_value
SELECT count(NULLIF(n_name, n_name)) AS n, count(NULLIF(n_name, 'X')) AS m FROM customers.nation;

-- q: filter_clause_with_null_condition
SELECT count(*) FILTER (WHERE NULLIF(n_regionkey, 1) = 1) AS never, count(*) FILTER (WHERE NULLIF(n_regionkey, 1) <> 1) AS others
FROM customers.nation;

-- q: null_literal_select
SELECT NULL AS a, CAST(NULL AS INT) AS b, CAST(NULL AS VARCHAR) AS c, CAST(NULL AS DATE) AS d;

-- q: null_comparison_in_having
SELECT n_regionkey, count(*) AS n FROM customers.nation GROUP BY n_regionkey HAVING max(NULLIF(n_nationkey, 24)) > 20;

-- q: coalesce_in_group_by
SELECT coalesce(NULLIF(n_regionkey, 3), -1) AS k, count(*) AS n FROM customers.nation GROUP BY coalesce(NULLIF(n_regionkey, 3), -1);

-- q: count_distinct_ignores_null
SELECT count(DISTINCT NULLIF(n_regionkey, 0)) AS n FROM customers.nation;

-- q: avg_with_nulls_denominator
SELECT avg(CASE WHEN n_nationkey < 10 THEN n_nationkey END) AS a, sum(CASE WHEN n_nationkey < 10 THEN n_nationkey END) * 1.0 / count(*) AS over_all
FROM customers.nation;
