-- Data-quality summary: one row per check, how many customer rows fail it and what share.
WITH customers AS (
    SELECT
        c.*,
        d.code IS NOT NULL AS known_country,
        count(*) OVER (PARTITION BY c.customer_id) AS rows_with_id
    FROM silver AS c
    LEFT JOIN dim_countries AS d ON d.code = c.country_code
),
counts AS (
    SELECT
        count(*) FILTER (WHERE customer_id IS NULL) AS missing_customer_id,
        count(*) FILTER (WHERE customer_id IS NOT NULL AND rows_with_id > 1) AS duplicate_customer_id,
        count(*) FILTER (WHERE email IS NULL) AS missing_email,
        count(*) FILTER (
            WHERE email IS NOT NULL AND NOT regexp_full_match(email, '[^@\s]+@[^@\s]+\.[^@\s]+')
        ) AS invalid_email,
        count(*) FILTER (WHERE NOT known_country) AS unknown_country,
        count(*) FILTER (WHERE signup_date IS NULL) AS missing_signup_date,
        count(*) FILTER (WHERE updated_at < signup_date) AS updated_before_signup,
        count(*) FILTER (WHERE lifetime_value IS NULL) AS missing_lifetime_value,
        count(*) FILTER (WHERE lifetime_value < 0) AS negative_lifetime_value,
        count(*) AS total_rows
    FROM customers
),
checks (position, check_name, description) AS (
    VALUES
        (1, 'missing_customer_id', 'customer_id is empty'),
        (2, 'duplicate_customer_id', 'customer_id appears on more than one row'),
        (3, 'missing_email', 'email is empty'),
        (4, 'invalid_email', 'email is not of the form name@domain.tld'),
        (5, 'unknown_country', 'country_code is empty or not in the countries dimension'),
        (6, 'missing_signup_date', 'signup_date is empty'),
        (7, 'updated_before_signup', 'updated_at is earlier than signup_date'),
        (8, 'missing_lifetime_value', 'lifetime_value is empty'),
        (9, 'negative_lifetime_value', 'lifetime_value is below zero')
)
SELECT
    checks.check_name,
    checks.description,
    failures.failing_rows,
    counts.total_rows,
    round(100.0 * failures.failing_rows / nullif(counts.total_rows, 0), 2) AS failing_percent
FROM (
    UNPIVOT (SELECT * EXCLUDE (total_rows) FROM counts)
    ON COLUMNS(*) INTO NAME check_name VALUE failing_rows
) AS failures
JOIN checks USING (check_name)
CROSS JOIN counts
ORDER BY checks.position
