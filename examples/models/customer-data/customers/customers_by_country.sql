-- Customers per country, with the country's name and region from the `countries` dimension.
-- Countries missing from the dimension keep their code with an empty name.
SELECT
    c.country_code,
    d.name AS country_name,
    d.region,
    count(DISTINCT c.customer_id) AS customers,
    count(DISTINCT c.customer_id) FILTER (WHERE c.status = 'active') AS active_customers,
    sum(c.lifetime_value) AS total_lifetime_value,
    round(avg(c.lifetime_value), 2) AS avg_lifetime_value
FROM silver AS c
LEFT JOIN dim_countries AS d ON d.code = c.country_code
GROUP BY c.country_code, d.name, d.region
ORDER BY customers DESC, c.country_code
