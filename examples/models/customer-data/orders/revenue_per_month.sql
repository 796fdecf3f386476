-- Orders, items and revenue per month and currency; cancelled and refunded orders excluded.
SELECT
    date_trunc('month', order_date)::DATE AS month,
    upper(currency) AS currency,
    count(DISTINCT order_id) AS orders,
    sum(quantity)::BIGINT AS items,
    sum(amount) AS revenue
FROM silver
WHERE order_date IS NOT NULL
  AND coalesce(status, '') NOT IN ('cancelled', 'refunded')
GROUP BY ALL
ORDER BY month, currency
