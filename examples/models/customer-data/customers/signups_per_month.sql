-- New customers per calendar month of their signup date, and the running total.
SELECT
    date_trunc('month', signup_date)::DATE AS month,
    count(DISTINCT customer_id) AS signups,
    sum(count(DISTINCT customer_id)) OVER (ORDER BY date_trunc('month', signup_date))::BIGINT
        AS signups_to_date
FROM silver
WHERE signup_date IS NOT NULL
GROUP BY date_trunc('month', signup_date)
ORDER BY month
