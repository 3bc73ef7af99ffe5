-- String functions analysts use: lengths, substrings, positions, padding, trimming,
-- replace/translate, split_part, concatenation, case, LIKE / ILIKE with escapes,
-- string_agg, casts, hashes.

-- q: lengths
SELECT n_name, length(n_name) AS l, char_length(n_name) AS cl, character_length(n_name) AS chl FROM customers.nation;

-- q: octet_length
SELECT n_name, octet_length(n_name) AS ol FROM customers.nation;
-- duckdb:
SELECT n_name, strlen(n_name) AS ol FROM customers.nation;

-- q: upper_lower
SELECT n_nationkey, lower(n_name) AS lo, upper(lower(n_name)) AS up FROM customers.nation;

-- q: substring_from_for
SELECT n_name, substring(n_name FROM 2 FOR 3) AS s1, substring(n_name FROM 4) AS s2, substr(n_name, 1, 2) AS s3 FROM customers.nation;

-- q: substring_zero_and_overlong
SELECT n_name, substr(n_name, 0, 3) AS z, substr(n_name, 5, 100) AS o FROM customers.nation;

-- q: substring_negative_start
-- dialect: substr with a negative start counts from before the first character in meshgate (DataFusion, like PostgreSQL: substr('hello', -1, 3) = 'h') and from the end in DuckDB ('o')
SELECT n_name, substr(n_name, -1, 3) AS s FROM customers.nation;

-- q: left_right
SELECT n_name, left(n_name, 3) AS l, right(n_name, 2) AS r FROM customers.nation;

-- q: position_strpos
SELECT n_name, position('A' IN n_name) AS p, strpos(n_name, 'AN') AS sp FROM customers.nation;

-- q: lpad_rpad
SELECT n_name, lpad(n_name, 12, '*') AS lp, rpad(n_name, 12, '-=') AS rp, lpad(n_name, 3, '*') AS cut FROM customers.nation;

-- q: lpad_numbers_to_string
SELECT n_nationkey, lpad(CAST(n_nationkey AS VARCHAR), 4, '0') AS code FROM customers.nation;

-- q: trim_variants
SELECT s, trim(s) AS t, ltrim(s) AS l, rtrim(s) AS r, length(trim(s)) AS n
FROM (VALUES ('  padded  '), ('none'), ('   '), (' a b ')) v(s);

-- q: trim_characters
SELECT c_phone, trim(BOTH '1' FROM c_phone) AS b, trim(LEADING '1' FROM c_phone) AS l, trim(TRAILING '9' FROM c_phone) AS t
FROM customers.customer WHERE c_custkey <= 30;

-- q: btrim_ltrim_chars
SELECT n_name, btrim(n_name, 'A') AS b, ltrim(n_name, 'AEIOU') AS l, rtrim(n_name, 'AEIOU') AS r FROM customers.nation;
-- duckdb:
SELECT n_name, trim(n_name, 'A') AS b, ltrim(n_name, 'AEIOU') AS l, rtrim(n_name, 'AEIOU') AS r FROM customers.nation;

-- q: replace_translate
SELECT n_name, replace(n_name, 'A', 'a') AS rep, translate(n_name, 'AEI', 'aei') AS tr, replace(n_name, 'AN', '') AS del
FROM customers.nation;

-- q: split_part_positive
SELECT p_type, split_part(p_type, ' ', 1) AS w1, split_part(p_type, ' ', 3) AS w3, split_part(p_type, ' ', 5) AS none
FROM supply.part WHERE p_partkey <= 30;

-- q: split_part_negative_index
SELECT p_type, split_part(p_type, ' ', -1) AS last_word FROM supply.part WHERE p_partkey <= 30;

-- q: concat_functions
SELECT n_nationkey, n_name || '/' || CAST(n_regionkey AS VARCHAR) AS op, concat(n_name, '-', n_regionkey) AS fn,
       concat_ws(', ', n_name, 'x', CAST(n_nationkey AS VARCHAR)) AS ws
FROM customers.nation;

-- q: reverse_repeat
SELECT n_name, reverse(n_name) AS rev, repeat(left(n_name, 2), 3) AS rep FROM customers.nation;

-- q: starts_ends_with
SELECT count(*) FILTER (WHERE starts_with(p_name, 'a')) AS a_start, count(*) FILTER (WHERE ends_with(p_name, 'n')) AS n_end
FROM supply.part;

-- q: ascii_chr
SELECT n_name, ascii(n_name) AS a, chr(ascii(n_name) + 1) AS next_letter FROM customers.nation;

-- q: initcap
SELECT n_name, initcap(n_name) AS ic FROM customers.nation;
-- duckdb:
SELECT n_name, upper(substr(n_name, 1, 1)) || lower(substr(n_name, 2)) AS ic FROM customers.nation WHERE position(' ' IN n_name) = 0
UNION ALL
SELECT n_name, CASE n_name WHEN 'SAUDI ARABIA' THEN 'Saudi Arabia' WHEN 'UNITED KINGDOM' THEN 'United Kingdom'
                           WHEN 'UNITED STATES' THEN 'United States' END FROM customers.nation WHERE position(' ' IN n_name) > 0;

-- q: like_patterns
SELECT count(*) FILTER (WHERE p_name LIKE '%green%') AS green, count(*) FILTER (WHERE p_name LIKE 'b_u%') AS b_u,
       count(*) FILTER (WHERE p_type NOT LIKE '%BRASS') AS not_brass, count(*) FILTER (WHERE p_container LIKE 'SM %') AS small
FROM supply.part;

-- q: ilike
SELECT count(*) FILTER (WHERE p_name ILIKE '%GREEN%') AS green, count(*) FILTER (WHERE p_type ILIKE 'promo%') AS promo,
       count(*) FILTER (WHERE p_type NOT ILIKE '%steel') AS not_steel
FROM supply.part;

-- q: like_escape_clause
-- expect: error LIKE does not support escape_char other than the backslash
SELECT s, s LIKE 'a#_b' ESCAPE '#' AS exact_underscore, s LIKE 'a_b' AS any_char, s LIKE '%#%%' ESCAPE '#' AS has_percent
FROM (VALUES ('a_b'), ('axb'), ('50%'), ('a%b')) v(s);

-- q: like_backslash_escape_clause
SELECT s, s LIKE 'a\_b' ESCAPE '\' AS exact_underscore, s LIKE '%\%' ESCAPE '\' AS ends_percent
FROM (VALUES ('a_b'), ('axb'), ('50%'), ('a%b')) v(s);

-- q: like_backslash_default_escape
-- dialect: without an ESCAPE clause, backslash escapes in LIKE patterns in meshgate (DataFusion, like PostgreSQL) and is an ordinary character in DuckDB; write ESCAPE '\' to be explicit
SELECT s, s LIKE 'a\_b' AS exact_underscore FROM (VALUES ('a_b'), ('axb')) v(s);

-- q: like_special_characters_in_data
SELECT count(*) AS n FROM customers.customer WHERE c_email LIKE 'customer1_@example.com';

-- q: similar_to
SELECT count(*) FILTER (WHERE p_container SIMILAR TO '(SM|LG) (CASE|BOX)') AS sm_lg, count(*) FILTER (WHERE p_brand SIMILAR TO 'Brand#[12]%') AS b12
FROM supply.part;

-- q: string_agg_ordered
SELECT n_regionkey, string_agg(n_name, '|' ORDER BY n_name) AS names FROM customers.nation GROUP BY n_regionkey;

-- q: string_agg_ordered_desc
SELECT r.r_name, string_agg(n.n_name, ', ' ORDER BY n.n_nationkey DESC) AS names
FROM customers.region r JOIN customers.nation n ON n.n_regionkey = r.r_regionkey GROUP BY r.r_name;

-- q: string_compare_and_order
-- ordered
SELECT n_name FROM customers.nation WHERE n_name > 'INDIA' AND n_name < 'ROMANIA' ORDER BY n_name DESC;

-- q: string_order_mixed_case_bytes
-- ordered
SELECT s FROM (VALUES ('apple'), ('Apple'), ('banana'), ('Banana'), ('_x'), ('1a'), ('Z')) v(s) ORDER BY s;

-- q: string_trailing_space_comparison
SELECT 'a' = 'a ' AS eq, 'a' < 'a ' AS lt, length('a ') AS l;

-- q: cast_int_to_string_and_back
SELECT n_nationkey, CAST(CAST(n_nationkey AS VARCHAR) AS BIGINT) + 1 AS back, CAST(n_nationkey AS VARCHAR) || 'x' AS s
FROM customers.nation;

-- q: cast_string_number_compare
SELECT count(*) AS n FROM customers.nation WHERE CAST(n_nationkey AS VARCHAR) < '2';

-- q: md5_hash
SELECT n_name, md5(n_name) AS h FROM customers.nation;

-- q: sha256_hex
SELECT n_name, encode(sha256(n_name), 'hex') AS h FROM customers.nation;
-- duckdb:
SELECT n_name, sha256(n_name) AS h FROM customers.nation;

-- q: to_hex
SELECT n_nationkey, to_hex(n_nationkey * 1000) AS h FROM customers.nation;
-- duckdb:
SELECT n_nationkey, lower(to_hex(n_nationkey * 1000)) AS h FROM customers.nation;

-- q: email_domain_extraction
SELECT split_part(c_email, '@', 2) AS domain, count(*) AS n FROM customers.customer GROUP BY 1;

-- q: phone_country_code
SELECT substring(c_phone FROM 1 FOR 2) AS cc, count(*) AS n, avg(c_acctbal) AS bal FROM customers.customer GROUP BY 1;

-- q: group_by_lower_brand
SELECT lower(p_brand) AS b, count(*) AS n FROM supply.part GROUP BY lower(p_brand);

-- q: string_in_list
SELECT count(*) AS n FROM sales.lineitem WHERE l_shipmode IN ('MAIL', 'SHIP') AND l_shipinstruct <> 'NONE';

-- q: unicode_length_and_upper
SELECT s, length(s) AS l, upper(s) AS u, octet_length(s) AS b, substr(s, 2, 2) AS sub
FROM (VALUES ('façade'), ('Ünïcödé'), ('日本語テキスト')) v(s);
-- duckdb:
SELECT s, length(s) AS l, upper(s) AS u, strlen(s) AS b, substr(s, 2, 2) AS sub
FROM (VALUES ('façade'), ('Ünïcödé'), ('日本語テキスト')) v(s);

-- q: coalesce_empty_string
SELECT count(*) AS n FROM (SELECT NULLIF(trim(' '), '') AS s FROM customers.region) t WHERE s IS NULL;

-- q: string_to_array_cardinality
SELECT p_partkey, cardinality(string_to_array(p_name, ' ')) AS words FROM supply.part WHERE p_partkey <= 20;
-- duckdb:
SELECT p_partkey, len(string_split(p_name, ' ')) AS words FROM supply.part WHERE p_partkey <= 20;

-- q: substring_regex_from
-- expect: error Function 'substr' failed to match any signature
SELECT substring('abc123def' FROM '[0-9]+') AS s;

-- q: overlay_placing
SELECT n_name, overlay(n_name PLACING 'xy' FROM 2 FOR 3) AS o FROM customers.nation;

-- q: trim_multiple_characters
SELECT trim(BOTH 'xy' FROM 'xyxhixyy') AS t, trim(LEADING 'ab' FROM 'abbaxab') AS l;

-- q: concat_mixed_types
SELECT concat('d', DATE '1995-01-01', 1.5, NULL, true) AS c;
