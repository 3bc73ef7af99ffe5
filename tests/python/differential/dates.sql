-- Dates, timestamps, intervals and time zones: extract / date_part / date_trunc,
-- interval arithmetic (month ends, leap years), date differences, string casts,
-- timestamps with time zones and AT TIME ZONE.

-- q: extract_parts
SELECT o_orderkey, extract(year FROM o_orderdate) AS y, extract(month FROM o_orderdate) AS m,
       extract(day FROM o_orderdate) AS d, extract(quarter FROM o_orderdate) AS q
FROM sales.orders WHERE o_custkey < 20;

-- q: extract_dow_doy
SELECT o_orderkey, extract(dow FROM o_orderdate) AS dow, extract(doy FROM o_orderdate) AS doy
FROM sales.orders WHERE o_custkey < 20;

-- q: extract_isodow
SELECT o_orderkey, extract(isodow FROM o_orderdate) AS isodow FROM sales.orders WHERE o_custkey < 20;

-- q: extract_week_iso
SELECT d, extract(week FROM d) AS w FROM (VALUES (DATE '1998-01-01'), (DATE '1996-12-30'), (DATE '1995-01-01'), (DATE '1993-12-31'), (DATE '1992-06-15')) t(d);

-- q: extract_epoch_from_date
SELECT o_orderkey, extract(epoch FROM o_orderdate) AS e FROM sales.orders WHERE o_custkey < 10;

-- q: date_part_function
SELECT date_part('year', o_orderdate) AS y, count(*) AS n FROM sales.orders GROUP BY date_part('year', o_orderdate);

-- q: date_trunc_month_counts
SELECT date_trunc('month', o_orderdate) AS m, count(*) AS n FROM sales.orders GROUP BY date_trunc('month', o_orderdate);

-- q: date_trunc_quarter_year
SELECT o_orderkey, date_trunc('quarter', o_orderdate) AS q, date_trunc('year', o_orderdate) AS y
FROM sales.orders WHERE o_custkey < 15;

-- q: date_trunc_week_monday
SELECT o_orderkey, o_orderdate, date_trunc('week', o_orderdate) AS w FROM sales.orders WHERE o_custkey < 15;

-- q: date_plus_interval_day
SELECT count(*) AS n FROM sales.lineitem WHERE l_receiptdate > l_shipdate + INTERVAL '20' DAY;

-- q: date_plus_interval_month_end
SELECT d, d + INTERVAL '1' MONTH AS plus_month, d - INTERVAL '1' MONTH AS minus_month
FROM (VALUES (DATE '1995-01-31'), (DATE '1996-01-31'), (DATE '1996-03-31'), (DATE '1995-12-31')) t(d);

-- q: date_plus_interval_year_leap
SELECT DATE '1996-02-29' + INTERVAL '1' YEAR AS a, DATE '1996-02-29' - INTERVAL '4' YEAR AS b, DATE '1995-02-28' + INTERVAL '1' DAY AS c;

-- q: date_plus_compound_interval
SELECT DATE '1995-01-31' + INTERVAL '1 month 1 day' AS a, DATE '1995-01-01' + INTERVAL '3 months' AS b;

-- q: date_minus_date_days
SELECT l_orderkey, l_linenumber, l_receiptdate - l_shipdate AS transit FROM sales.lineitem WHERE l_orderkey < 50;

-- q: date_minus_date_aggregated
SELECT l_shipmode, avg(l_receiptdate - l_shipdate) AS avg_transit, max(l_receiptdate - l_commitdate) AS worst_delay
FROM sales.lineitem GROUP BY l_shipmode;

-- q: date_plus_integer
SELECT o_orderkey, o_orderdate + 30 AS due FROM sales.orders WHERE o_custkey < 10;

-- q: date_compare_string_literal
SELECT count(*) AS n FROM sales.orders WHERE o_orderdate >= '1995-01-01' AND o_orderdate < '1995-04-01';

-- q: date_between_literals
SELECT count(*) AS n FROM sales.orders WHERE o_orderdate BETWEEN DATE '1994-01-01' AND DATE '1994-12-31';

-- q: date_tpch_interval_window
SELECT count(*) AS n FROM sales.orders
WHERE o_orderdate >= DATE '1993-07-01' AND o_orderdate < DATE '1993-07-01' + INTERVAL '3' MONTH;

-- q: date_cast_to_string
SELECT o_orderkey, CAST(o_orderdate AS VARCHAR) AS s FROM sales.orders WHERE o_custkey < 10;

-- q: string_cast_to_date
SELECT CAST('1995-03-15' AS DATE) AS d, CAST('1995-03-15' AS DATE) + INTERVAL '10' DAY AS d10;

-- q: make_date_parts
SELECT make_date(1996, 2, 29) AS a, make_date(CAST(extract(year FROM o_orderdate) AS INT), 1, 1) AS jan1
FROM sales.orders WHERE o_orderkey = 1;

-- q: to_char_formatting
SELECT o_orderkey, to_char(o_orderdate, '%Y/%m/%d') AS f FROM sales.orders WHERE o_custkey < 10;
-- duckdb:
SELECT o_orderkey, strftime(o_orderdate, '%Y/%m/%d') AS f FROM sales.orders WHERE o_custkey < 10;

-- q: orders_per_year_month
SELECT extract(year FROM o_orderdate) AS y, extract(month FROM o_orderdate) AS m, count(*) AS n, sum(o_totalprice) AS total
FROM sales.orders GROUP BY 1, 2;

-- q: partition_column_vs_extract
SELECT count(*) AS n FROM sales.orders WHERE o_year <> extract(year FROM o_orderdate);

-- q: late_lineitems_share
SELECT l_shipmode, avg(CASE WHEN l_receiptdate > l_commitdate THEN 1.0 ELSE 0.0 END) AS late_share
FROM sales.lineitem GROUP BY l_shipmode;

-- q: timestamp_from_date_plus_hours
SELECT o_orderkey, CAST(o_orderdate AS TIMESTAMP) + INTERVAL '36' HOUR AS ts FROM sales.orders WHERE o_custkey < 10;

-- q: timestamp_literal_extract
SELECT extract(hour FROM TIMESTAMP '1995-06-15 13:45:30') AS h, extract(minute FROM TIMESTAMP '1995-06-15 13:45:30') AS mi,
       extract(second FROM TIMESTAMP '1995-06-15 13:45:30') AS s;

-- q: timestamp_date_trunc_hour
SELECT date_trunc('hour', TIMESTAMP '1995-06-15 13:45:30') AS h, date_trunc('day', TIMESTAMP '1995-06-15 13:45:30') AS d,
       date_trunc('minute', TIMESTAMP '1995-06-15 13:45:30.999') AS m;

-- q: timestamp_cast_string_with_t
SELECT CAST('1995-06-15T13:45:30' AS TIMESTAMP) AS t, CAST('1995-06-15 13:45:30.123456' AS TIMESTAMP) AS us;

-- q: timestamp_minus_timestamp_epoch
SELECT extract(epoch FROM TIMESTAMP '1995-06-15 13:45:30') - extract(epoch FROM TIMESTAMP '1995-06-14 12:00:00') AS secs;

-- q: timestamp_compare_date
SELECT count(*) AS n FROM sales.orders WHERE CAST(o_orderdate AS TIMESTAMP) < TIMESTAMP '1993-01-01 00:00:01';

-- q: timestamp_cast_to_date
SELECT CAST(TIMESTAMP '1995-06-15 23:59:59' AS DATE) AS d;

-- q: to_timestamp_from_epoch
SELECT to_timestamp(800000000) AS t;

-- q: timestamptz_literal_utc_instant
SELECT CAST('1995-06-15 12:00:00+02:00' AS TIMESTAMP WITH TIME ZONE) AS t;

-- q: timestamptz_extract_hour_utc
SELECT extract(hour FROM CAST('1995-06-15 12:00:00+02:00' AS TIMESTAMP WITH TIME ZONE)) AS h;

-- q: timestamptz_at_time_zone_wall_clock
SELECT extract(day FROM CAST('1995-06-15 02:00:00+00:00' AS TIMESTAMP WITH TIME ZONE) AT TIME ZONE 'America/New_York') AS d,
       extract(hour FROM CAST('1995-06-15 02:00:00+00:00' AS TIMESTAMP WITH TIME ZONE) AT TIME ZONE 'America/New_York') AS h;

-- q: timestamptz_at_time_zone_hour
SELECT extract(hour FROM CAST('1995-06-15 12:00:00+00:00' AS TIMESTAMP WITH TIME ZONE) AT TIME ZONE 'America/New_York') AS h;

-- q: timestamp_naive_at_time_zone
SELECT TIMESTAMP '1995-06-15 12:00:00' AT TIME ZONE 'America/New_York' AS t;

-- q: timestamptz_date_trunc_day
SELECT date_trunc('day', CAST('1995-06-15 01:30:00+05:00' AS TIMESTAMP WITH TIME ZONE)) AS d;

-- q: timestamptz_cast_to_date
SELECT CAST(CAST('1995-06-15 01:30:00+05:00' AS TIMESTAMP WITH TIME ZONE) AS DATE) AS d;

-- q: timestamptz_dst_interval
SELECT CAST('1995-04-01 12:00:00+00:00' AS TIMESTAMP WITH TIME ZONE) + INTERVAL '1' DAY AS t;

-- q: interval_times_integer
-- expect: error Invalid interval arithmetic
SELECT DATE '1995-01-01' + INTERVAL '1' DAY * 40 AS e;

-- q: integer_times_interval
-- expect: error Invalid interval arithmetic
SELECT DATE '1995-01-01' + 3 * INTERVAL '1' MONTH AS d;

-- q: date_bin_weekly
SELECT date_bin(INTERVAL '7' DAY, CAST(o_orderdate AS TIMESTAMP), TIMESTAMP '1992-01-06') AS wk, count(*) AS n
FROM sales.orders WHERE o_orderdate < DATE '1992-04-01' GROUP BY 1;
-- duckdb:
SELECT time_bucket(INTERVAL '7' DAY, CAST(o_orderdate AS TIMESTAMP), TIMESTAMP '1992-01-06') AS wk, count(*) AS n
FROM sales.orders WHERE o_orderdate < DATE '1992-04-01' GROUP BY 1;

-- q: generate_series_dates
SELECT d.day, count(o.o_orderkey) AS n
FROM (SELECT unnest(generate_series(DATE '1995-01-01', DATE '1995-01-10', INTERVAL '1' DAY)) AS day) d
LEFT JOIN sales.orders o ON o.o_orderdate = d.day GROUP BY d.day;

-- q: date_min_max_per_customer
SELECT o_custkey, min(o_orderdate) AS first_order, max(o_orderdate) AS last_order, max(o_orderdate) - min(o_orderdate) AS span
FROM sales.orders WHERE o_custkey < 40 GROUP BY o_custkey;

-- q: shipped_within_days_of_order
SELECT count(*) AS n FROM sales.orders o JOIN sales.lineitem l ON l.l_orderkey = o.o_orderkey
WHERE l.l_shipdate <= o.o_orderdate + INTERVAL '10' DAY;

-- q: date_literal_before_epoch
SELECT DATE '1969-12-31' + INTERVAL '1' DAY AS a, extract(epoch FROM DATE '1969-12-31') AS e;

-- q: current_date_is_today_type
SELECT current_date >= DATE '2020-01-01' AS after_2020;

-- q: cast_timestamp_to_string
-- dialect: a TIMESTAMP cast to VARCHAR is ISO 8601 with a T in meshgate ('1995-06-15T13:45:30'), with a space in DuckDB and PostgreSQL; use to_char/strftime for a fixed format
SELECT CAST(TIMESTAMP '1995-06-15 13:45:30' AS VARCHAR) AS s;

-- q: timestamp_formatted_with_to_char
SELECT to_char(TIMESTAMP '1995-06-15 13:45:30', '%Y-%m-%d %H:%M:%S') AS s;
-- duckdb:
SELECT strftime(TIMESTAMP '1995-06-15 13:45:30', '%Y-%m-%d %H:%M:%S') AS s;

-- q: timestamptz_without_offset_is_session_zone
SELECT CAST('1995-06-15 12:00:00' AS TIMESTAMP WITH TIME ZONE) AS t, extract(hour FROM CAST('1995-06-15 12:00:00' AS TIMESTAMP WITH TIME ZONE)) AS h;

-- q: timestamptz_half_hour_zone
SELECT extract(hour FROM CAST('1995-06-15 12:00:00+00:00' AS TIMESTAMP WITH TIME ZONE) AT TIME ZONE 'Asia/Kolkata') AS h,
       extract(minute FROM CAST('1995-06-15 12:00:00+00:00' AS TIMESTAMP WITH TIME ZONE) AT TIME ZONE 'Asia/Kolkata') AS m;

-- q: timestamptz_dst_boundary_local_hours
SELECT t, extract(hour FROM t AT TIME ZONE 'America/New_York') AS local_hour
FROM (VALUES (CAST('1995-04-02 06:30:00+00:00' AS TIMESTAMP WITH TIME ZONE)),
             (CAST('1995-04-02 07:30:00+00:00' AS TIMESTAMP WITH TIME ZONE)),
             (CAST('1995-10-29 05:30:00+00:00' AS TIMESTAMP WITH TIME ZONE)),
             (CAST('1995-10-29 06:30:00+00:00' AS TIMESTAMP WITH TIME ZONE))) v(t);

-- q: timestamptz_ordering_across_offsets
-- ordered
SELECT t FROM (VALUES (CAST('1995-06-15 12:00:00+02:00' AS TIMESTAMP WITH TIME ZONE)),
                      (CAST('1995-06-15 11:00:00+00:00' AS TIMESTAMP WITH TIME ZONE)),
                      (CAST('1995-06-15 06:30:00-04:00' AS TIMESTAMP WITH TIME ZONE))) v(t) ORDER BY t;

-- q: timestamptz_compare_equal_instants
SELECT CAST('1995-06-15 12:00:00+02:00' AS TIMESTAMP WITH TIME ZONE) = CAST('1995-06-15 10:00:00+00:00' AS TIMESTAMP WITH TIME ZONE) AS same;

-- q: timestamptz_group_by_utc_day
SELECT date_trunc('day', t) AS d, count(*) AS n
FROM (VALUES (CAST('1995-06-15 23:30:00-02:00' AS TIMESTAMP WITH TIME ZONE)),
             (CAST('1995-06-16 00:30:00+00:00' AS TIMESTAMP WITH TIME ZONE)),
             (CAST('1995-06-15 12:00:00+00:00' AS TIMESTAMP WITH TIME ZONE))) v(t) GROUP BY 1;

-- q: month_end_from_date_trunc
SELECT o_orderkey, date_trunc('month', o_orderdate) + INTERVAL '1 month' - INTERVAL '1 day' AS month_end
FROM sales.orders WHERE o_custkey < 10;

-- q: timestamp_strings_with_z_suffix
SELECT CAST('1995-06-15T13:45:30Z' AS TIMESTAMP) AS t, CAST('1995-06-15T13:45:30Z' AS TIMESTAMP WITH TIME ZONE) AS tz;

-- q: timestamptz_to_timestamp_and_back
SELECT CAST(CAST('1995-06-15 13:45:30+02:00' AS TIMESTAMP WITH TIME ZONE) AS TIMESTAMP) AS t,
       CAST(TIMESTAMP '1995-06-15 13:45:30' AS TIMESTAMP WITH TIME ZONE) AS tz,
       extract(epoch FROM CAST('1995-06-15 13:45:30+02:00' AS TIMESTAMP WITH TIME ZONE)) AS e;

-- q: to_timestamp_fractional_epoch
SELECT to_timestamp(800000000.5) AS t;

-- q: date_parts_of_timestamps
SELECT date_part('week', DATE '1995-01-01') AS w, extract(dow FROM TIMESTAMP '1995-06-18 10:00:00') AS d,
       extract(doy FROM TIMESTAMP '1996-12-31 10:00:00') AS y;
