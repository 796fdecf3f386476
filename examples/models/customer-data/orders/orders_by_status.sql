-- How many orders are in each status, and their share of all orders.
SELECT
    coalesce(status, 'unknown') AS status,
    count(*) AS orders,
    sum(amount) AS amount,
    round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS percent_of_orders
FROM silver
GROUP BY ALL
ORDER BY orders DESC, status
