-- The loaded tables of the dataset, their columns and types: what the staging views read,
-- and part of the views' fingerprint.
select
    loaded_column.table_name,
    loaded_column.column_name,
    loaded_column.data_type
from information_schema.columns as loaded_column
inner join information_schema.tables as loaded_table
    on
        loaded_column.table_catalog = loaded_table.table_catalog
        and loaded_column.table_schema = loaded_table.table_schema
        and loaded_column.table_name = loaded_table.table_name
where
    loaded_column.table_catalog = current_database()
    and loaded_column.table_schema = $schema
    and loaded_table.table_type = 'BASE TABLE'
