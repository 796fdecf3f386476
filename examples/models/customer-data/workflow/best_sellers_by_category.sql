-- The three best-selling products of each category by items sold in valid orders
-- (ties: the lower product id first), with their orders.
WITH sold AS (
    SELECT
        p.category,
        p.product_id,
        p.name,
        sum(o.quantity)::BIGINT AS items,
        count(DISTINCT o.order_id) AS orders
    FROM gold.valid_orders AS o
    JOIN silver.products AS p ON p.product_id = o.product_id
    GROUP BY ALL
)
SELECT
    category,
    row_number() OVER (PARTITION BY category ORDER BY items DESC, product_id) AS rank,
    product_id,
    name,
    items,
    orders
FROM sold
QUALIFY rank <= 3
ORDER BY category, rank
