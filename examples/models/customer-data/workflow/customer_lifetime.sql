-- Every customer's lifetime: first and last valid order, orders, items and revenue per
-- currency (amounts are not converted). A customer without a valid order has 0 orders.
SELECT
    c.customer_id,
    c.first_name,
    c.last_name,
    c.country_code,
    min(o.order_date) AS first_order,
    max(o.order_date) AS last_order,
    count(DISTINCT o.order_id) AS orders,
    coalesce(sum(o.quantity), 0)::BIGINT AS items,
    coalesce(sum(o.amount) FILTER (WHERE o.currency = 'EUR'), 0) AS revenue_eur,
    coalesce(sum(o.amount) FILTER (WHERE o.currency = 'GBP'), 0) AS revenue_gbp,
    coalesce(sum(o.amount) FILTER (WHERE o.currency = 'USD'), 0) AS revenue_usd
FROM silver.customers AS c
LEFT JOIN gold.valid_orders AS o ON o.customer_id = c.customer_id
GROUP BY ALL
ORDER BY c.customer_id
