-- How many of the relations the price list reads exist: 3 when it can be read.
select count(*) as present
from information_schema.tables
where
    table_catalog = current_database()
    and table_schema = $schema
    and table_name in ($prices_table, 'batch_costs', 'batch_lifecycle')
