-- Regular expressions: matching operators, regexp_like / regexp_match /
-- regexp_replace / regexp_count, anchors, classes, flags, capture groups.

-- q: tilde_partial_match
SELECT count(*) FILTER (WHERE p_name ~ 'green') AS green, count(*) FILTER (WHERE p_name !~ 'e') AS no_e,
       count(*) FILTER (WHERE p_type ~ '^PROMO') AS promo
FROM supply.part;

-- q: tilde_case_insensitive
SELECT count(*) FILTER (WHERE p_name ~* 'GREEN') AS green, count(*) FILTER (WHERE p_name !~* 'BLUE') AS not_blue FROM supply.part;
-- duckdb:
SELECT count(*) FILTER (WHERE regexp_matches(p_name, 'GREEN', 'i')) AS green,
       count(*) FILTER (WHERE NOT regexp_matches(p_name, 'BLUE', 'i')) AS not_blue FROM supply.part;

-- q: regexp_like_anchored
SELECT count(*) FILTER (WHERE regexp_like(p_container, '^(SM|LG) ')) AS sm_lg,
       count(*) FILTER (WHERE regexp_like(p_container, 'BOX$')) AS boxes
FROM supply.part;
-- duckdb:
SELECT count(*) FILTER (WHERE regexp_matches(p_container, '^(SM|LG) ')) AS sm_lg,
       count(*) FILTER (WHERE regexp_matches(p_container, 'BOX$')) AS boxes
FROM supply.part;

-- q: regexp_like_flags
SELECT count(*) AS n FROM supply.part WHERE regexp_like(p_type, 'promo.*steel', 'i');
-- duckdb:
SELECT count(*) AS n FROM supply.part WHERE regexp_matches(p_type, 'promo.*steel', 'i');

-- q: regexp_like_character_classes
SELECT c_phone, regexp_like(c_phone, '^[0-9]{2}-[0-9]{3}-[0-9]{3}-[0-9]{4}$') AS well_formed,
       regexp_like(c_address, '\d') AS has_digit, regexp_like(c_address, '[[:upper:]]{3}') AS three_caps
FROM customers.customer WHERE c_custkey <= 40;
-- duckdb:
SELECT c_phone, regexp_matches(c_phone, '^[0-9]{2}-[0-9]{3}-[0-9]{3}-[0-9]{4}$') AS well_formed,
       regexp_matches(c_address, '\d') AS has_digit, regexp_matches(c_address, '[[:upper:]]{3}') AS three_caps
FROM customers.customer WHERE c_custkey <= 40;

-- q: regexp_match_capture_group
SELECT c_email, regexp_match(c_email, '^customer([0-9]+)@')[1] AS num FROM customers.customer WHERE c_custkey <= 25;
-- duckdb:
SELECT c_email, regexp_extract(c_email, '^customer([0-9]+)@', 1) AS num FROM customers.customer WHERE c_custkey <= 25;

-- q: regexp_match_two_groups
SELECT p_brand, regexp_match(p_brand, 'Brand#([0-9])([0-9])')[1] AS mfgr, regexp_match(p_brand, 'Brand#([0-9])([0-9])')[2] AS line
FROM supply.part WHERE p_partkey <= 20;
-- duckdb:
SELECT p_brand, regexp_extract(p_brand, 'Brand#([0-9])([0-9])', 1) AS mfgr, regexp_extract(p_brand, 'Brand#([0-9])([0-9])', 2) AS line
FROM supply.part WHERE p_partkey <= 20;

-- q: regexp_match_no_match_is_null
-- dialect: a regular expression that does not match gives NULL in meshgate (regexp_match, like PostgreSQL's) and '' in DuckDB (regexp_extract)
SELECT n_name, regexp_match(n_name, 'Z(.)')[1] AS after_z FROM customers.nation;
-- duckdb:
SELECT n_name, regexp_extract(n_name, 'Z(.)', 1) AS after_z FROM customers.nation;

-- q: regexp_replace_first_only
SELECT n_name, regexp_replace(n_name, 'A', '_') AS first_a FROM customers.nation;

-- q: regexp_replace_global
SELECT n_name, regexp_replace(n_name, '[AEIOU]', '', 'g') AS consonants FROM customers.nation;

-- q: regexp_replace_backreference
SELECT c_phone, regexp_replace(c_phone, '^([0-9]+)-([0-9]+)-', '(\1) \2 ') AS formatted FROM customers.customer WHERE c_custkey <= 20;

-- q: regexp_replace_case_insensitive_global
SELECT p_name, regexp_replace(p_name, 'GREEN|BLUE', 'colour', 'gi') AS masked FROM supply.part WHERE p_partkey <= 40;

-- q: regexp_replace_dollar_anchor
SELECT n_name, regexp_replace(n_name, 'A$', '!') AS last_a FROM customers.nation;

-- q: regexp_count_occurrences
SELECT n_name, regexp_count(n_name, 'A') AS a_count FROM customers.nation;
-- duckdb:
SELECT n_name, len(regexp_extract_all(n_name, 'A')) AS a_count FROM customers.nation;

-- q: regexp_filter_group_by
SELECT regexp_replace(p_type, ' .*$', '') AS first_word, count(*) AS n FROM supply.part GROUP BY 1;

-- q: regexp_word_boundary
SELECT count(*) FILTER (WHERE p_name ~ '\bred\b') AS red_word, count(*) FILTER (WHERE p_name ~ 'red') AS red_anywhere FROM supply.part;

-- q: regexp_alternation_and_quantifier
SELECT l_comment, l_comment ~ '^(quick|slyly|carefully)\s+\w+' AS starts_adverb FROM sales.lineitem WHERE l_orderkey <= 10;

-- q: regexp_dot_does_not_match_newline
SELECT s, s ~ 'a.b' AS dot FROM (VALUES ('a
b'), ('axb')) v(s);

-- q: regexp_escape_special
SELECT s, s ~ '\.' AS has_dot, s ~ '\$\d' AS dollar_digit, regexp_replace(s, '[.$]', '_', 'g') AS cleaned
FROM (VALUES ('a.b'), ('$5'), ('plain')) v(s);

-- q: regexp_split_to_words
SELECT p_partkey, regexp_replace(p_name, '\s+', '_', 'g') AS snake FROM supply.part WHERE p_partkey <= 15;

-- q: regexp_in_join_condition
SELECT count(*) AS n FROM customers.nation n JOIN customers.region r ON n.n_name ~ ('^' || left(r.r_name, 1));
-- duckdb:
SELECT count(*) AS n FROM customers.nation n JOIN customers.region r ON regexp_matches(n.n_name, '^' || left(r.r_name, 1));

-- q: regexp_case_insensitive_inline_flag
SELECT count(*) AS n FROM supply.part WHERE p_name ~ '(?i)^GREEN';

-- q: regexp_replace_dollar_in_replacement
-- known-wrong: the replacement is Rust regex syntax: '$USD ' is read as the (missing) group named USD and vanishes ('price 5' -> ' 5'); PostgreSQL and DuckDB insert '$USD ' literally (groups are \1)
SELECT regexp_replace('price 5', 'price ', '$USD ') AS a;

-- q: regexp_replace_dollar_digit_in_replacement
-- known-wrong: '$1' in the replacement is a group reference in meshgate ('abbc'); PostgreSQL and DuckDB insert it literally ('a$1$1c')
SELECT regexp_replace('abc', '(b)', '$1$1') AS a;

-- q: regexp_replace_escaped_backslash
-- known-wrong: '\\' in the replacement stays two backslashes in meshgate; PostgreSQL and DuckDB read it as one literal backslash
SELECT regexp_replace('a.b', '\.', '\\') AS b;

-- q: regexp_replace_lone_dollar
SELECT regexp_replace('cost', 'cost', 'US$ 5') AS b, regexp_replace(o_clerk, 'Clerk#0*', '#') AS c FROM sales.orders WHERE o_orderkey < 4;
