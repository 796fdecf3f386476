-- The orders the workflow's models count: every order but the cancelled and refunded
-- ones (an order with no status counts). The other models read it as gold.valid_orders.
SELECT
    order_id,
    customer_id,
    product_id,
    order_date,
    quantity,
    amount,
    upper(currency) AS currency
FROM silver.orders
WHERE coalesce(status, '') NOT IN ('cancelled', 'refunded')
ORDER BY order_id
