-- Revenue per customer country and month, per currency (amounts are not converted):
-- valid orders joined to their customer and the customer's country. Orders of unknown
-- customers, and orders without a date, are left out; a country code the countries
-- dimension does not know keeps its code, with no name.
SELECT
    c.country_code,
    d.name AS country_name,
    date_trunc('month', o.order_date)::DATE AS month,
    o.currency,
    count(DISTINCT o.order_id) AS orders,
    count(DISTINCT o.customer_id) AS customers,
    sum(o.quantity)::BIGINT AS items,
    sum(o.amount) AS revenue
FROM gold.valid_orders AS o
JOIN silver.customers AS c ON c.customer_id = o.customer_id
LEFT JOIN dim_countries AS d ON d.code = c.country_code
WHERE o.order_date IS NOT NULL
GROUP BY ALL
ORDER BY c.country_code, month, o.currency
