-- Catalogue per category: products, how many are active, and the price range.
SELECT
    category,
    count(*) AS products,
    count(*) FILTER (WHERE active) AS active_products,
    min(price) AS min_price,
    round(avg(price), 2) AS avg_price,
    max(price) AS max_price
FROM silver
GROUP BY category
ORDER BY category
